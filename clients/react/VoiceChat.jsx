// <VoiceChat /> — a thin React wrapper over @parley/client (see clients/README.md).
import { useCallback, useEffect, useRef, useState } from 'react';
import { ParleyClient, ConversationLog } from '@parley/client';
import { AudioPlayer, MicCapture, createAudioContext, requestMicrophone, describeMicError } from '@parley/client/audio';

/** @param {number} s */
function formatDuration(s) {
  const t = Math.max(0, Math.floor(s));
  const h = Math.floor(t / 3600);
  const mm = String(Math.floor((t % 3600) / 60)).padStart(2, '0');
  const ss = String(t % 60).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** RMS -> 0..1 on a -60..-12 dBFS scale. @param {number} rms */
function levelOf(rms) {
  if (!rms || rms <= 0) return 0;
  return Math.min(1, Math.max(0, (20 * Math.log10(rms) + 60) / 48));
}

/**
 * Headless hook: the whole call lifecycle, for custom UIs.
 * @param {import('./VoiceChat').UseVoiceChatOptions} opts
 */
export function useVoiceChat(opts) {
  const optsRef = useRef(opts);
  optsRef.current = opts;
  const callRef = useRef(/** @type {any} */ (null));
  const ctxRef = useRef(/** @type {AudioContext|null} */ (null));
  const [status, setStatus] = useState(/** @type {'idle'|'starting'|'live'|'reconnecting'|'ended'} */ ('idle'));
  const [entries, setEntries] = useState(/** @type {any[]} */ ([]));
  const [error, setError] = useState(/** @type {{code: string, message: string}|null} */ (null));
  const [network, setNetwork] = useState(/** @type {any} */ (null));
  const [muted, setMutedState] = useState(false);
  const [speaking, setSpeaking] = useState(false);
  const [duration, setDuration] = useState(0);
  const [levels, setLevels] = useState({ mic: 0, assistant: 0 });
  const [sessionId, setSessionId] = useState(/** @type {string|null} */ (null));

  const cleanup = useCallback((c) => {
    if (!c || c.finished) return;
    c.finished = true;
    clearInterval(c.ticker);
    try { c.mic.stop(); } catch { /* ignore */ }
    c.stream?.getTracks().forEach((t) => t.stop());
    try { c.player.flush('end'); c.player.close(); } catch { /* ignore */ }
    c.detach?.();
  }, []);

  const finish = useCallback((c, result) => {
    cleanup(c);
    if (callRef.current === c) callRef.current = null;
    setStatus('ended');
    setSpeaking(false);
    setLevels({ mic: 0, assistant: 0 });
    if (!c.reported) {
      c.reported = true;
      const metrics = result?.metrics ?? c.client.summary();
      optsRef.current.onSessionEnd?.(c.client.sessionId, metrics);
    }
  }, [cleanup]);

  const start = useCallback(async () => {
    if (callRef.current) return;
    const o = optsRef.current;
    setError(null);
    setStatus('starting');
    const fail = (err) => {
      const e = { code: err?.code || 'error', message: err?.message || String(err) };
      setError(e);
      setStatus('idle');
      o.onError?.(e);
    };
    let ctx;
    try {
      if (!ctxRef.current || ctxRef.current.state === 'closed') ctxRef.current = createAudioContext();
      ctx = ctxRef.current;
      ctx.resume().catch(() => {});
    } catch (err) {
      return fail(describeMicError(err));
    }
    const base = o.workletBaseUrl ? o.workletBaseUrl.replace(/\/?$/, '/') : null;
    const player = new AudioPlayer({ context: ctx, workletUrl: base ? `${base}playback-processor.js` : undefined });
    const playerReady = player.init().then(() => null, (e) => e);
    let stream;
    try {
      stream = await requestMicrophone();
    } catch (err) {
      player.close();
      return fail(describeMicError(err));
    }
    const perr = await playerReady;
    if (perr) {
      stream.getTracks().forEach((t) => t.stop());
      return fail(describeMicError(Object.assign(perr, { name: 'audio_unsupported' })));
    }
    const mic = new MicCapture({ context: ctx, workletUrl: base ? `${base}capture-processor.js` : undefined });
    const client = new ParleyClient({
      apiUrl: o.apiUrl,
      userId: o.userId,
      chatbotId: o.chatbotId,
      config: o.initialConfig,
      headers: o.headers,
      token: o.token,
      transport: o.transport,
      player,
      createCapture: () => mic,
    });
    const log = new ConversationLog();
    const c = { client, mic, player, stream, log, finished: false, reported: false, ticker: null, detach: null };
    callRef.current = c;
    player.setMuted(muted);
    const offs = [log.attach(client)];
    log.on('change', (list) => {
      setEntries(list.map((e) => ({ ...e })));
      o.onTranscript?.(list);
    });
    offs.push(client.on('network', (n) => setNetwork(n)));
    offs.push(client.on('audioStart', () => setSpeaking(true)));
    offs.push(client.on('interrupted', () => setSpeaking(false)));
    offs.push(client.on('error', (e) => {
      if (e.source === 'http') return;
      setError({ code: e.code, message: e.message });
      optsRef.current.onError?.(e);
    }));
    offs.push(client.on('state', (s) => {
      if (callRef.current !== c) return;
      if (s.state === 'reconnecting' && c.live) setStatus('reconnecting');
      if (s.state === 'connected' && c.live) setStatus('live');
      if (s.state === 'closed' && c.live && !c.userEnded) finish(c);
    }));
    player.onDrained = () => setSpeaking(false);
    c.detach = () => offs.forEach((off) => off());

    try {
      await client.start();
      await client.startMicrophone(stream);
    } catch (err) {
      cleanup(c);
      callRef.current = null;
      if (client.state !== 'closed') client.disconnect();
      return fail(err?.name === 'ParleyError' ? err : describeMicError(err));
    }
    if (callRef.current !== c) return;
    c.live = true;
    setSessionId(client.sessionId);
    setStatus('live');
    const t0 = Date.now();
    setDuration(0);
    c.ticker = setInterval(() => {
      setDuration((Date.now() - t0) / 1000);
      setLevels({ mic: levelOf(mic.level), assistant: levelOf(player.level) });
    }, 100);
    optsRef.current.onSessionStart?.(client.sessionId);
  }, [cleanup, finish, muted]);

  const end = useCallback(async () => {
    const c = callRef.current;
    if (!c) return null;
    c.userEnded = true;
    cleanup(c);
    let result = null;
    try {
      result = await c.client.end();
    } finally {
      finish(c, result);
    }
    return result;
  }, [cleanup, finish]);

  const sendText = useCallback((text) => {
    const c = callRef.current;
    if (!c) return false;
    const ok = c.client.sendText(text);
    if (ok) c.log.addTyped(text.trim());
    return ok;
  }, []);

  const interrupt = useCallback(() => {
    const c = callRef.current;
    if (!c) return false;
    setSpeaking(false);
    return c.client.interrupt();
  }, []);

  const setMuted = useCallback((m) => {
    setMutedState(m);
    callRef.current?.player.setMuted(m);
  }, []);

  // Unmounting ends the conversation.
  useEffect(() => () => {
    const c = callRef.current;
    if (c) {
      c.userEnded = true;
      cleanup(c);
      c.client.end().catch(() => {});
    }
  }, [cleanup]);

  return { status, sessionId, entries, error, network, muted, speaking, duration, levels, start, end, sendText, interrupt, setMuted, clearError: () => setError(null) };
}

const QUALITY_TEXT = { good: 'Good', fair: 'Fair', poor: 'Poor', unknown: 'Measuring' };
const STATUS_TEXT = { idle: 'Ready', starting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', ended: 'Call ended' };

/**
 * Voice chat widget: Start/End call, live transcript with confidence, mute, stop, typed messages.
 * @param {import('./VoiceChat').VoiceChatProps} props
 */
export function VoiceChat(props) {
  const { showTranscript: showInitially = true, className = '', title = 'Voice chat' } = props;
  const vc = useVoiceChat(props);
  const [showTranscript, setShowTranscript] = useState(showInitially);
  const [text, setText] = useState('');
  const listRef = useRef(/** @type {HTMLOListElement|null} */ (null));
  const inCall = vc.status === 'live' || vc.status === 'reconnecting';

  useEffect(() => {
    const el = listRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [vc.entries]);

  const onSubmit = (e) => {
    e.preventDefault();
    const t = text.trim();
    if (!t) return;
    try {
      vc.sendText(t);
      setText('');
    } catch {
      /* not connected */
    }
  };

  return (
    <section className={`parley-vc ${className}`.trim()} data-status={vc.status} aria-label={title}>
      <header className="parley-vc__bar">
        <span className="parley-vc__status" role="status" aria-live="polite" data-testid="vc-status">{STATUS_TEXT[vc.status]}</span>
        {vc.network && inCall && (
          <span className="parley-vc__net" data-quality={vc.network.quality} title={`RTT ${vc.network.rttMs ?? '—'} ms, jitter ${vc.network.jitterMs ?? '—'} ms`}>
            {QUALITY_TEXT[vc.network.quality] || 'Measuring'}{vc.network.rttMs != null ? ` · ${Math.round(vc.network.rttMs)} ms` : ''}
          </span>
        )}
        {(inCall || vc.status === 'ended') && (
          <time className="parley-vc__timer" data-testid="vc-timer" aria-label="Call duration">{formatDuration(vc.duration)}</time>
        )}
      </header>

      {vc.error && (
        <div className="parley-vc__error" role="alert">
          <span>{vc.error.message}</span>
          <button type="button" onClick={vc.clearError} aria-label="Dismiss">×</button>
        </div>
      )}

      <div className="parley-vc__stage">
        {!inCall ? (
          <button type="button" className="parley-vc__start" data-testid="vc-start" onClick={vc.start} disabled={vc.status === 'starting'}>
            {vc.status === 'starting' ? 'Connecting…' : 'Start Call'}
          </button>
        ) : (
          <>
            <div className="parley-vc__meters" aria-hidden="true">
              <span className="parley-vc__level">You
                <span className="parley-vc__meter" data-who="user"><i style={{ width: `${Math.round(vc.levels.mic * 100)}%` }} /></span>
              </span>
              <span className="parley-vc__level">Assistant
                <span className="parley-vc__meter" data-who="assistant"><i style={{ width: `${Math.round(vc.levels.assistant * 100)}%` }} /></span>
              </span>
            </div>
            <div className="parley-vc__controls" role="toolbar" aria-label="Call controls">
              <button type="button" aria-pressed={vc.muted} onClick={() => vc.setMuted(!vc.muted)} data-testid="vc-mute">
                {vc.muted ? 'Unmute' : 'Mute'}
              </button>
              <button type="button" onClick={vc.interrupt} disabled={!vc.speaking} data-testid="vc-interrupt">Stop</button>
              <button type="button" aria-pressed={showTranscript} onClick={() => setShowTranscript(!showTranscript)}>
                {showTranscript ? 'Hide transcript' : 'Show transcript'}
              </button>
              <button type="button" className="parley-vc__end" onClick={vc.end} data-testid="vc-end">End Call</button>
            </div>
          </>
        )}
      </div>

      {showTranscript && vc.entries.length > 0 && (
        <ol className="parley-vc__transcript" ref={listRef} aria-live="polite" aria-label="Transcript" data-testid="vc-transcript">
          {vc.entries.map((e) => (
            <li key={e.id} className="parley-vc__msg" data-role={e.role} data-final={String(e.final)}>
              <span className="parley-vc__who">
                {e.role === 'user' ? 'You' : e.role === 'assistant' ? 'Assistant' : 'System'}
                {e.final && e.confidence != null && !e.typed && (
                  <span className="parley-vc__badge" title="Recognition confidence">{Math.round(e.confidence * 100)}%</span>
                )}
              </span>
              <span className="parley-vc__text">{e.text || '…'}</span>
              {e.interrupted && <span className="parley-vc__interrupted">— interrupted</span>}
            </li>
          ))}
        </ol>
      )}

      {inCall && (
        <form className="parley-vc__composer" onSubmit={onSubmit}>
          <input
            type="text" value={text} onChange={(e) => setText(e.target.value)} maxLength={8000}
            placeholder="Type a message…" aria-label="Type a message" data-testid="vc-input"
          />
          <button type="submit" disabled={!text.trim()} data-testid="vc-send">Send</button>
        </form>
      )}
    </section>
  );
}

export default VoiceChat;
