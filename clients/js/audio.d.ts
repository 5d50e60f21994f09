// Type declarations for @parley/client/audio (audio.js). Browser only (secure context).
import type { CaptureSource, PlaybackSink } from './parley-client.js';

export declare const MIC_CONSTRAINTS: Readonly<{
  audio: Readonly<{ echoCancellation: true; noiseSuppression: true; autoGainControl: true; channelCount: 1 }>;
  video: false;
}>;
export declare const CAPTURE_WORKLET_URL: string;
export declare const PLAYBACK_WORKLET_URL: string;

export declare function loadWorkletModule(context: BaseAudioContext, url: string): Promise<void>;
export declare function createAudioContext(opts?: { AudioContext?: any; latencyHint?: AudioContextLatencyCategory | number }): AudioContext;
export declare function describeMicError(err: unknown): { code: 'mic_denied' | 'mic_not_found' | 'mic_busy' | 'mic_insecure' | 'audio_unsupported' | 'mic_error'; message: string };
export declare function requestMicrophone(opts?: { mediaDevices?: MediaDevices }): Promise<MediaStream>;
export declare function rmsLevel(samples: Float32Array): number;

export declare class MicCapture implements CaptureSource {
  constructor(opts?: { context?: AudioContext; workletUrl?: string; mediaDevices?: MediaDevices; targetRate?: number; frameMs?: number; AudioWorkletNode?: any });
  context: AudioContext | null;
  stream: MediaStream | null;
  /** Time-domain analyser of the raw microphone (for waveforms). */
  analyser: AnalyserNode | null;
  /** RMS (0..1) of the last 20 ms frame. */
  level: number;
  peak: number;
  framesEmitted: number;
  muted: boolean;
  running: boolean;
  onFrame: ((frame: ArrayBuffer) => void) | null;
  onLevel: ((level: number) => void) | null;
  start(opts?: { stream?: MediaStream; onFrame?: (frame: ArrayBuffer) => void }): Promise<void>;
  setMuted(muted: boolean): void;
  stop(): void;
}

export interface PlayerCounters {
  chunksReceived: number;
  /** samples played, in the server's sample rate */
  samplesPlayed: number;
  /** samples played, at the AudioContext rate */
  outputSamplesPlayed: number;
  flushes: number;
  underruns: number;
  turns: number;
}

export declare class AudioPlayer implements PlaybackSink {
  constructor(opts?: { context?: AudioContext; workletUrl?: string; prebufferMs?: number; sampleRate?: number; AudioWorkletNode?: any });
  context: AudioContext | null;
  prebufferMs: number;
  sampleRate: number;
  /** Time-domain analyser of the assistant's voice (before the mute gain). */
  analyser: AnalyserNode | null;
  gain: GainNode | null;
  muted: boolean;
  /** RMS (0..1) of recent output */
  level: number;
  state: 'idle' | 'buffering' | 'playing';
  bufferedMs: number;
  counters: PlayerCounters;
  onDrained: (() => void) | null;
  onStats: ((stats: Record<string, unknown>) => void) | null;
  init(): Promise<void>;
  setSampleRate(rate: number): void;
  startTurn(turnId: number | null, rate?: number): void;
  push(pcm: ArrayBuffer, rate?: number): void;
  endTurn(turnId?: number | null): void;
  flush(reason?: string): void;
  setMuted(muted: boolean): void;
  /** Play a WebRTC call's audio track through an audio element (the echo canceller hears it),
   * metered by the analyser; level, samplesPlayed, flush, mute and onDrained keep working. */
  playStream(stream: MediaStream, opts?: { document?: Document; now?: () => number }): void;
  /** Stop playing the stream; pushed chunks play again. */
  stopStream(): void;
  close(): void;
}

export declare const STREAM_POLL_MS: 50;
export declare const STREAM_AUDIBLE_RMS: number;
export declare const STREAM_DRAINED_MS: 300;
export declare const STREAM_FLUSH_MUTE_MS: 250;
