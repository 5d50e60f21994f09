// Type declarations for @parley/react.
import type { ReactElement } from 'react';
import type { AnyConfig, CallSummary, ErrorEvent, LogEntry, NetworkEvent } from '@parley/client';

export interface UseVoiceChatOptions {
  /** Gateway base URL (e.g. "http://localhost:8000"); S1's ".../api/voice" form is accepted too. Default: the page's origin. */
  apiUrl?: string;
  userId?: string;
  chatbotId?: string | null;
  /** Session configuration, camelCase (S1) or snake_case: ttsProvider, voice, language, responseStyle, ... */
  initialConfig?: AnyConfig;
  /** Extra REST headers. */
  headers?: Record<string, string>;
  /** The gateway's bearer token, or a function returning it (called at each request and
   * (re)connection, so a refreshed token is used); sent as Authorization and `?token=`. */
  token?: import('@parley/client').TokenSource;
  /** `auto` (default): WebRTC when the browser has it and the server offers it, else the
   * WebSocket; `websocket` or `webrtc` forces one (see ParleyClientOptions.transport). */
  transport?: import('@parley/client').TransportOption;
  /** Where the two AudioWorklet files are served, if your bundler does not handle `new URL(..., import.meta.url)`. */
  workletBaseUrl?: string;
  onSessionStart?: (sessionId: string) => void;
  onSessionEnd?: (sessionId: string | null, metrics: CallSummary) => void;
  onError?: (error: ErrorEvent | { code: string; message: string }) => void;
  onTranscript?: (entries: LogEntry[]) => void;
}

export interface VoiceChatProps extends UseVoiceChatOptions {
  /** Show the transcript initially (default true); the user can toggle it. */
  showTranscript?: boolean;
  className?: string;
  /** Accessible name of the widget (default "Voice chat"). */
  title?: string;
}

export type VoiceChatStatus = 'idle' | 'starting' | 'live' | 'reconnecting' | 'ended';

export interface UseVoiceChat {
  status: VoiceChatStatus;
  sessionId: string | null;
  entries: LogEntry[];
  error: { code: string; message: string } | null;
  network: NetworkEvent | null;
  muted: boolean;
  /** the assistant is talking */
  speaking: boolean;
  /** seconds since the call started */
  duration: number;
  /** 0..1 */
  levels: { mic: number; assistant: number };
  start(): Promise<void>;
  end(): Promise<unknown>;
  sendText(text: string): boolean;
  interrupt(): boolean;
  setMuted(muted: boolean): void;
  clearError(): void;
}

export declare function useVoiceChat(opts: UseVoiceChatOptions): UseVoiceChat;
export declare function VoiceChat(props: VoiceChatProps): ReactElement;
export default VoiceChat;
