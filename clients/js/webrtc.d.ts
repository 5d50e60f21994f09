// Type declarations for @parley/client/webrtc (webrtc.js).

export declare const TRANSPORTS: readonly ['auto', 'webrtc', 'websocket'];
export declare const GATHER_TIMEOUT_MS: 3000;

/** What GET /api/v1/webrtc returns. */
export interface WebRtcSetup {
  ice_servers: Array<{ urls: string[]; username?: string | null; credential?: string | null }>;
  ice_gathering: 'complete';
  data_channel: { label: string; id: number; negotiated: true; ordered: true };
}

/** The WebSocket close code a refused signalling request stands for (401 -> 4401, ...; else 1006). */
export declare function signallingCloseCode(err: unknown): number;
export declare function iceServers(servers: WebRtcSetup['ice_servers']): RTCIceServer[];
export declare function iceGathered(
  pc: RTCPeerConnection,
  timeoutMs: number,
  timers: { setTimeout: (fn: () => void, ms: number) => any; clearTimeout: (id: any) => void },
): Promise<void>;

export interface WebRtcSocketOptions {
  RTCPeerConnection: any;
  setup: WebRtcSetup;
  /** sends the offer, resolves with the answer */
  signal: (offer: { type: 'offer'; sdp: string }) => Promise<{ type: string; sdp: string }>;
  microphone?: MediaStreamTrack | null;
  onRemoteStream?: (stream: MediaStream) => void;
  gatherTimeoutMs?: number;
  timers?: { setTimeout: (fn: () => void, ms: number) => any; clearTimeout: (id: any) => void };
}

/** One WebRTC connection to a session, with a WebSocket's surface. */
export declare class WebRtcSocket {
  constructor(opts: WebRtcSocketOptions);
  readonly pc: RTCPeerConnection;
  readonly channel: RTCDataChannel;
  readyState: 0 | 1 | 2 | 3;
  binaryType: string;
  readonly bufferedAmount: number;
  /** the assistant's audio, once its track arrived */
  remoteStream: MediaStream | null;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: string }) => void) | null;
  onclose: ((ev: { code: number; reason: string; wasClean: boolean }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  /** JSON text goes on the data channel; binary is ignored (the microphone is on the track). */
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  setMicrophone(track: MediaStreamTrack | null): Promise<void>;
  getStats(): Promise<RTCStatsReport>;
  close(code?: number, reason?: string): void;
}
