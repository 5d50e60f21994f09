// Type declarations for @parley/client (parley-client.js).

export declare const CLOSE_CODES: Readonly<{
  NORMAL: 1000;
  GOING_AWAY: 1001;
  INTERNAL_ERROR: 1011;
  PROTOCOL_ERROR: 4400;
  /** no token, or one the gateway does not accept; final, never retried */
  UNAUTHENTICATED: 4401;
  /** the token's user may not do this; final, never retried */
  FORBIDDEN: 4403;
  SESSION_NOT_FOUND: 4404;
  /** the session connected again elsewhere (another tab or window); final, never retried */
  REPLACED: 4409;
  SESSION_ENDED: 4410;
}>;
export declare const SERVER_EVENTS: readonly ServerEventType[];
export declare const S2_EVENTS: readonly S2EventType[];
export declare const INPUT_SAMPLE_RATE: 16000;
export declare const FRAME_MS: 20;
export declare const FRAME_SAMPLES: 320;
export declare const FRAME_BYTES: 640;
export declare const DEFAULT_OUTPUT_SAMPLE_RATE: 24000;
export declare const MAX_TEXT_LENGTH: 8000;
export declare const DEFAULT_CONFIG: Readonly<SessionConfig>;
export declare const RESPONSE_STYLES: readonly ResponseStyle[];
export declare const INTERRUPT_SENSITIVITIES: readonly InterruptSensitivity[];
export declare const PROVIDERS: Readonly<{ stt: readonly SttProvider[]; llm: readonly LlmProvider[]; tts: readonly TtsProvider[] }>;

export type ServerEventType =
  | 'ready' | 'pong' | 'speech_started' | 'speech_stopped' | 'transcript' | 'response'
  | 'audio_start' | 'audio_end' | 'interrupted' | 'audio_pause' | 'audio_resume' | 'metrics'
  | 'error' | 'action';
export type S2EventType =
  | 'transcription_complete' | 'response_generated' | 'voice_processing_complete' | 'voice_processing_error';

export type ResponseStyle = 'concise' | 'conversational' | 'detailed';
export type InterruptSensitivity = 'low' | 'medium' | 'high';
export type SttProvider = 'local' | 'whisper' | 'openai' | 'groq' | 'deepgram' | 'assemblyai' | 'scripted' | (string & {});
export type LlmProvider = 'local' | 'openai' | 'groq' | 'anthropic' | 'scripted' | (string & {});
export type TtsProvider = 'local' | 'openai' | 'elevenlabs' | 'deepgram' | 'playht' | 'scripted' | (string & {});
export type Role = 'user' | 'assistant' | 'system';
export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';
export type NetworkGrade = 'good' | 'fair' | 'poor' | 'unknown';
export type Transport = 'webrtc' | 'websocket';
export type TransportOption = 'auto' | Transport;

/** Wire (snake_case) session configuration. */
export interface SessionConfig {
  stt_provider?: SttProvider;
  llm_provider?: LlmProvider;
  tts_provider?: TtsProvider;
  /** null = the provider's default model */
  stt_model?: string | null;
  llm_model?: string | null;
  tts_model?: string | null;
  /** providers tried in order when the stage's provider fails (at most 4) */
  stt_fallback?: SttProvider[];
  llm_fallback?: LlmProvider[];
  tts_fallback?: TtsProvider[];
  voice?: string | null;
  /** 0.5-2.0; 2.0 speaks in half the time */
  speed?: number;
  /** null = let the STT provider detect the language */
  language?: string | null;
  response_style?: ResponseStyle;
  interrupt_sensitivity?: InterruptSensitivity;
  /** speech over the assistant: 'pause' its audio and resume after a backchannel or noise
   * (default), or 'stop' the turn at once */
  barge_in?: 'pause' | 'stop';
  /** false = end turns by silence alone, without the end-of-turn model */
  semantic_turn?: boolean;
  /** true = start the answer during the silence, held until the turn ends (default false) */
  speculative_answer?: boolean;
  /** label each spoken user turn's tone (text sentiment plus the voice's prosody) */
  detect_emotion?: boolean;
  system_prompt?: string | null;
  output_sample_rate?: 8000 | 16000 | 22050 | 24000 | 44100 | 48000;
}

/** The same configuration with S1's camelCase names (accepted everywhere a config is). */
export interface SessionConfigCamel {
  sttProvider?: SttProvider;
  llmProvider?: LlmProvider;
  ttsProvider?: TtsProvider;
  voice?: string | null;
  language?: string | null;
  responseStyle?: ResponseStyle;
  interruptSensitivity?: InterruptSensitivity;
  semanticTurn?: boolean;
  detectEmotion?: boolean;
  speed?: number;
  systemPrompt?: string | null;
  outputSampleRate?: number;
}

export type AnyConfig = SessionConfig | SessionConfigCamel | Record<string, unknown>;

/** A session as `/api/v1` returns it. */
export interface SessionView {
  id: string;
  status: 'active' | 'ended';
  user_id: string;
  chatbot_id: string | null;
  config: Required<SessionConfig>;
  ws_url: string;
  started_at: string;
  ended_at?: string | null;
  duration_seconds?: number | null;
  total_turns?: number;
  interruptions_count?: number;
}

export interface TranscriptEntryView {
  turn_id: number;
  role: Role;
  text: string;
  confidence: number | null;
  language: string | null;
  interrupted: boolean;
  started_at: string | null;
  ended_at: string | null;
  emotion?: Emotion | null;
}

export type EmotionLabel = 'neutral' | 'happy' | 'excited' | 'frustrated' | 'angry' | 'sad';
/** The tone of a user's spoken turn, in sessions with `detect_emotion`. */
export interface Emotion {
  label: EmotionLabel;
  /** one per label, summing to 1 */
  scores: Record<EmotionLabel, number>;
  /** -1 negative .. 1 positive (the words) */
  valence: number;
  /** -1 subdued .. 1 animated (the voice, next to the user's usual) */
  arousal: number;
}

export interface TranscriptView {
  session_id: string;
  entries: TranscriptEntryView[];
}

export interface VoiceInfo {
  id: string;
  name: string;
  language?: string | null;
  [key: string]: unknown;
}

export interface VoicesView {
  provider: string;
  voices: VoiceInfo[];
}

/** One provider of GET /api/v1/providers: whether this deployment can serve it, and if not, why. */
export interface ProviderStatus<Name extends string = string> {
  name: Name;
  available: boolean;
  /** e.g. "no API key: set OPENAI_API_KEY"; null when available */
  reason: string | null;
}

export interface ProvidersView {
  stt: ProviderStatus<SttProvider>[];
  llm: ProviderStatus<LlmProvider>[];
  tts: ProviderStatus<TtsProvider>[];
}

/** The usable provider names of each kind, in the server's order. */
export interface AvailableProviders {
  stt: SttProvider[];
  llm: LlmProvider[];
  tts: TtsProvider[];
}

export declare class ParleyError extends Error {
  constructor(code: string, message: string, extra?: { status?: number; details?: unknown[]; cause?: unknown; recoverable?: boolean });
  readonly name: 'ParleyError';
  code: string;
  status: number | null;
  details: unknown[];
  recoverable: boolean;
}

export declare function snakeCase(key: string): string;
export declare function camelCase(key: string): string;
export declare function camelKeys<T extends object>(obj: T): Record<string, unknown>;
export declare function normalizeConfig(config?: AnyConfig): SessionConfig;
export declare function apiBase(apiUrl?: string): string;
export declare function resolveWsUrl(wsUrl: string | null | undefined, base: string, sessionId: string): string;
/** `url` with `?token=` set to `token` (URL-encoded, replacing one already there); unchanged without a token. */
export declare function withToken(url: string, token: string | null | undefined): string;

/**
 * The bearer token, or a function giving it (a string or a Promise of one) that is asked before
 * every REST request and every WebSocket (re)connection, so a refreshed token is used.
 * null, undefined or '' mean no token.
 */
export type TokenSource = string | null | (() => string | null | undefined | Promise<string | null | undefined>);
/** Normalise a providers answer: every entry becomes {name, available, reason}; bare names (older gateways) count as available. */
export declare function normalizeProviders(listing: unknown): ProvidersView;
/** Only the providers a session may choose, per kind. */
export declare function availableProviders(listing: ProvidersView | unknown): AvailableProviders;
export declare function networkQuality(n: { rttMs?: number | null; jitterMs?: number | null; recentReconnects?: number; state?: string }): NetworkGrade;

export declare class Emitter<Events extends object = Record<string, any>> {
  on<K extends keyof Events & string>(name: K, handler: (payload: Events[K]) => void): () => void;
  off<K extends keyof Events & string>(name: K, handler: (payload: Events[K]) => void): void;
  once<K extends keyof Events & string>(name: K, handler: (payload: Events[K]) => void): () => void;
  emit<K extends keyof Events & string>(name: K, payload?: Events[K]): void;
}

export declare class ParleyApi {
  /** `token` goes as `Authorization: Bearer` on every request (replacing one in `headers`). */
  constructor(opts?: { apiUrl?: string; fetch?: typeof fetch; headers?: Record<string, string>; token?: TokenSource });
  readonly base: string;
  headers: Record<string, string>;
  /** The token to use now (null: none); a Promise only when the token function returned one.
   * Throws / rejects with a ParleyError `token_unavailable` (the function failed) or `config_error`. */
  resolveToken(): string | null | Promise<string | null>;
  /** `keepalive`: the request outlives the page (for pagehide). */
  request<T = any>(method: string, path: string, body?: unknown, options?: { keepalive?: boolean }): Promise<T>;
  /** Without `userId` the server takes the token's user ("anonymous" without auth); naming another user than the token's is a 403. */
  createSession(p?: { userId?: string | null; chatbotId?: string | null; config?: AnyConfig }): Promise<SessionView>;
  getSession(id: string): Promise<SessionView>;
  endSession(id: string, options?: { keepalive?: boolean }): Promise<SessionView>;
  getTranscript(id: string): Promise<TranscriptView>;
  listVoices(provider?: string): Promise<VoicesView>;
  /** GET /api/v1/providers, normalised (see normalizeProviders) */
  listProviders(): Promise<ProvidersView>;
  /** GET /api/v1/webrtc: ICE servers and data channel of WebRTC calls (404 `webrtc_disabled` when off). */
  webrtcConfig(): Promise<import('./webrtc.js').WebRtcSetup>;
  /** POST /api/v1/sessions/{id}/webrtc: the offer (every ICE candidate in it) in, the answer out. */
  webrtcOffer(id: string, offer: { type: 'offer'; sdp: string }): Promise<{ type: 'answer'; sdp: string }>;
}

// -- events ------------------------------------------------------------------------------------
export interface StateEvent {
  state: ConnectionState;
  previous: ConnectionState;
  attempt?: number;
  delayMs?: number;
  code?: number;
  reason?: string;
  /** on a final `closed`: why reconnecting would not help (`session_replaced`, `session_ended`, ...) */
  error?: FinalCloseCode;
}
/** Why a connection closed for good: 4401, 4403, 4404, 4409, 4410, 4400 and 1000 are never retried. */
export type FinalCloseCode =
  | 'unauthenticated' | 'forbidden' | 'session_not_found' | 'session_replaced' | 'session_ended' | 'protocol_error' | 'session_closed';
export interface ReadyEvent {
  sessionId: string;
  config: SessionConfig | null;
  inputSampleRate: number;
  outputSampleRate: number;
  /** true when this is a reconnection to the same session */
  resumed: boolean;
}
export interface TranscriptEvent {
  role: Role;
  text: string;
  isFinal: boolean;
  partial: boolean;
  confidence: number | null;
  language: string | null;
  turnId: number | null;
  interrupted: boolean;
  emotion: Emotion | null;
}
export interface ResponseEvent { turnId: number | null; text: string; done: boolean }
export interface AudioStartEvent { turnId: number | null; sampleRate: number; encoding: 'pcm_s16le' | string }
export interface AudioEvent { pcm: ArrayBuffer; sampleRate: number; turnId: number | null }
export interface AudioEndEvent { turnId: number | null }
export interface InterruptedEvent { turnId: number | null; heardText: string | null }
export interface FlushEvent { reason: 'interrupted' | 'local_interrupt' | 'paused' | 'connection_lost' | 'closed' | 'end' | string; turnId: number | null }
/** The server paused (or resumed) a turn's audio while it judged speech over it. */
export interface AudioPauseEvent { turnId: number | null }
export interface MetricsEvent {
  turnId: number | null;
  sttFinalMs: number | null;
  llmFirstTokenMs: number | null;
  ttsFirstByteMs: number | null;
  voiceToVoiceMs: number | null;
  interruptMs: number | null;
}
export interface NetworkEvent { rttMs: number | null; jitterMs: number | null; reconnects: number; quality: NetworkGrade }
export interface PongEvent { rttMs: number; ts: number; serverTs: number | null }
export interface ErrorEvent {
  /** server codes pass through (REST 401s: token_missing, token_expired, ... with status 401);
   * client codes: server_unreachable, http_<status>, unauthenticated / forbidden (the socket was
   * refused, 4401 / 4403; the message is the server's reason), token_unavailable (the token
   * function failed), session_not_found, session_replaced (the call continues in another window),
   * session_ended, session_closed, protocol_error, reconnect_failed, config_error, ... */
  code: string;
  message: string;
  source: 'server' | 'client' | 'network' | 'http';
  fatal: boolean;
  recoverable: boolean;
  status?: number;
  closeCode?: number;
}
export interface CallSummary {
  durationSeconds: number;
  totalTurns: number;
  interruptions: number;
  avgVoiceToVoiceMs: number | null;
  rttMs: number | null;
  jitterMs: number | null;
  reconnects: number;
  framesSent: number;
  chunksReceived: number;
  transport: Transport | null;
}
/** The assistant acts on the call: continue in text, or hang up after the goodbye. */
export interface ActionEvent { turnId: number | null; action: 'switch_to_text' | 'end_call' }
export interface EndedEvent { sessionId: string | null; session: SessionView | null; metrics: CallSummary }

export interface ParleyClientEvents {
  state: StateEvent;
  ready: ReadyEvent;
  session: SessionView;
  /** the call's transport once chosen; again with `reason` when WebRTC could not connect */
  transport: { transport: Transport; reason?: string };
  transcript: TranscriptEvent;
  response: ResponseEvent;
  speechStarted: { atMs: number | null };
  speechStopped: { atMs: number | null; durationMs: number | null };
  audioStart: AudioStartEvent;
  audio: AudioEvent;
  audioEnd: AudioEndEvent;
  interrupted: InterruptedEvent;
  audioPause: AudioPauseEvent;
  audioResume: AudioPauseEvent;
  flush: FlushEvent;
  metrics: MetricsEvent;
  action: ActionEvent;
  network: NetworkEvent;
  pong: PongEvent;
  error: ErrorEvent;
  ended: EndedEvent;
  legacy: { type: S2EventType; [key: string]: unknown };
  message: { type: string; data?: unknown; [key: string]: unknown };
  handlerError: { event: string; error: unknown };
}

/** Where received assistant audio goes (AudioPlayer from ./audio.js implements it). */
export interface PlaybackSink {
  push(pcm: ArrayBuffer, sampleRate: number, turnId: number | null): void;
  flush(reason?: string): void;
  startTurn?(turnId: number | null, sampleRate: number): void;
  endTurn?(turnId: number | null): void;
  setSampleRate?(rate: number): void;
  /** Play a WebRTC call's audio track instead of pushed chunks (without it the client plays
   * the track in an audio element of its own). */
  playStream?(stream: MediaStream): void;
}

/** A microphone source (MicCapture from ./audio.js implements it). */
export interface CaptureSource {
  start(opts: { stream?: MediaStream; onFrame: (frame: ArrayBuffer) => void }): Promise<void> | void;
  stop(): void;
}

export interface TimerFunctions {
  setTimeout?: (fn: () => void, ms: number) => any;
  clearTimeout?: (id: any) => void;
  setInterval?: (fn: () => void, ms: number) => any;
  clearInterval?: (id: any) => void;
}

export interface ParleyClientOptions {
  /** Gateway base URL; default: the page's origin. `/api/v1` or `/api/voice` suffixes are accepted. */
  apiUrl?: string;
  userId?: string;
  chatbotId?: string | null;
  config?: AnyConfig;
  fetch?: typeof fetch;
  WebSocket?: { new (url: string): WebSocket } | any;
  /** `auto` (default): WebRTC when the browser has it and the server offers it (GET
   * /api/v1/webrtc), else the WebSocket; a WebRTC call that cannot connect falls back to it.
   * `webrtc` fails (`webrtc_unavailable`) instead of falling back; `websocket` never tries WebRTC. */
  transport?: TransportOption;
  /** RTCPeerConnection constructor (default: the browser's). */
  RTCPeerConnection?: any;
  /** Extra REST headers. */
  headers?: Record<string, string>;
  /** Bearer token for REST (`Authorization`) and the WebSocket (`?token=`, asked anew at each
   * reconnect). Not with `api`: give it to that ParleyApi instead. */
  token?: TokenSource;
  api?: ParleyApi;
  player?: PlaybackSink;
  createCapture?: () => CaptureSource;
  audioContext?: AudioContext;
  onFlush?: (info: { reason: string; turnId: number | null }) => void;
  /** default 2000 */
  pingIntervalMs?: number;
  /** no message for this long -> the connection is considered dead (default max(3 pings + 1 s, 5 s)) */
  staleAfterMs?: number;
  /** default 10000 */
  connectTimeoutMs?: number;
  /** default {maxAttempts: 10, baseDelayMs: 500, maxDelayMs: 8000, resetAfterMs: 10000};
   * delay = min(max, base*2^(n-1)) * (0.75..1.25); the attempt count starts over once a
   * connection has stayed up for resetAfterMs */
  reconnect?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number; resetAfterMs?: number };
  /** Send microphone frames only between pushToTalk('start') and pushToTalk('stop'). */
  pushToTalkOnly?: boolean;
  /** Drop microphone frames while the socket buffers more than this (default 64 KiB). */
  maxBufferedBytes?: number;
  timers?: TimerFunctions;
  now?: () => number;
  random?: () => number;
}

export interface ClientStats {
  framesSent: number;
  framesDropped: number;
  bytesSent: number;
  chunksReceived: number;
  chunksDiscarded: number;
  bytesReceived: number;
  pingsSent: number;
  pongsReceived: number;
  reconnects: number;
  flushes: number;
  messagesReceived: number;
}

export declare class ParleyClient extends Emitter<ParleyClientEvents> {
  constructor(options?: ParleyClientOptions);
  readonly options: ParleyClientOptions;
  readonly api: ParleyApi;
  /** null: the server decides (the token's user, or "anonymous" without auth) */
  userId: string | null;
  chatbotId: string | null;
  config: SessionConfig;
  state: ConnectionState;
  sessionId: string | null;
  session: SessionView | null;
  wsUrl: string | null;
  ready: unknown;
  outputSampleRate: number;
  audioTurnId: number | null;
  audioSampleRate: number;
  player: PlaybackSink | null;
  capture: CaptureSource | null;
  /** the `transport` option */
  readonly transportOption: TransportOption;
  /** the current call's transport (null until chosen) */
  transport: Transport | null;
  stats: ClientStats;
  network: NetworkEvent;
  turnMetrics: MetricsEvent[];
  startedAt: number | null;
  pingIntervalMs: number;
  pushToTalkOnly: boolean;

  /** Create a session and connect; resolves once the server said `ready`. */
  start(): Promise<SessionView>;
  /** Connect (or resume) an existing session by id or view. */
  connect(session: string | SessionView): Promise<SessionView>;
  /** Close the socket, keep the session resumable. */
  disconnect(): void;
  /** End the session (POST /end) and close. */
  end(): Promise<EndedEvent>;
  getTranscript(id?: string): Promise<TranscriptView>;
  summary(): CallSummary;

  startMicrophone(stream?: MediaStream): Promise<CaptureSource>;
  stopMicrophone(): void;
  enablePlayback(): Promise<PlaybackSink>;
  attachPlayer(player: PlaybackSink | null): void;
  /** Send one 16 kHz PCM16 frame; false when dropped. */
  sendAudio(pcm: ArrayBuffer | ArrayBufferView): boolean;

  sendText(text: string): boolean;
  pushToTalk(action: 'start' | 'stop' | boolean): boolean;
  interrupt(): boolean;
  ping(): boolean;
  /** Dispatch one parsed server message (tests, custom transports). */
  handleMessage(msg: unknown): void;
}

export interface LogEntry {
  id: string;
  role: Role;
  turnId: number | null;
  text: string;
  /** false while the text is a partial (still forming) */
  final: boolean;
  confidence: number | null;
  interrupted: boolean;
  typed: boolean;
  heardText: string | null;
  emotion: Emotion | null;
}

/** The visible conversation, kept from client events. */
export declare class ConversationLog extends Emitter<{ change: LogEntry[] }> {
  entries: LogEntry[];
  attach(client: ParleyClient): () => void;
  clear(): void;
  addTyped(text: string): LogEntry;
  applyTranscript(t: Partial<TranscriptEvent> & { role: Role; text: string; isFinal: boolean }): LogEntry | null;
  applyResponse(r: ResponseEvent): LogEntry | null;
  applyInterrupted(i: { turnId: number | null; heardText?: string | null }): LogEntry | null;
}

export default ParleyClient;
