// Minimal usage of <VoiceChat />, as in S1's README.
import { VoiceChat } from '@parley/react';
import '@parley/react/VoiceChat.css';

// `?api=http://host:port` points the example at a gateway on another origin (it must allow CORS);
// by default the Vite dev server proxies /api to the gateway (see vite.config.js).
const apiUrl = new URLSearchParams(location.search).get('api') || location.origin;

export default function App() {
  return (
    <main>
      <h1>Parley voice chat</h1>
      <VoiceChat
        apiUrl={apiUrl}
        userId="user-123"
        initialConfig={{
          ttsProvider: 'local',
          language: 'en',
          responseStyle: 'conversational',
          interruptSensitivity: 'medium',
        }}
        onSessionStart={(sessionId) => {
          console.log('Session started:', sessionId);
        }}
        onSessionEnd={(sessionId, metrics) => {
          console.log('Session ended with metrics:', sessionId, metrics);
        }}
      />
    </main>
  );
}
