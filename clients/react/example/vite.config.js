import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  // @parley/react is linked from the parent folder: resolve its imports from this app.
  resolve: { dedupe: ['react', 'react-dom', '@parley/client'] },
  // The client's AudioWorklet files are located with `new URL(..., import.meta.url)`:
  // keep the package out of dependency pre-bundling so those URLs stay valid in dev.
  optimizeDeps: { exclude: ['@parley/client', '@parley/react'] },
  server: {
    // Dev convenience: proxy the gateway so the page and the API share an origin.
    proxy: {
      '/api': { target: process.env.PARLEY_GATEWAY || 'http://127.0.0.1:8000', ws: true, changeOrigin: true },
    },
  },
});
