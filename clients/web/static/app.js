// Parley call page: settings, the call (mic -> server -> voice), live transcript, indicators.
// Loads the client library from ./lib, which the gateway serves from clients/js as it is.

import { ParleyClient, ParleyApi, ConversationLog, DEFAULT_CONFIG } from './lib/parley-client.js';
import { MicCapture, AudioPlayer, createAudioContext, requestMicrophone, describeMicError } from './lib/audio.js';
import { initMyVoices } from './my-voices.js';
import { emotionBadge } from './emotion.js';

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const params = new URLSearchParams(location.search);
/** The gateway; `?api=http://host:port` points a page served elsewhere at it. */
const API_URL = params.get('api') || location.origin;
/** The call's transport: WebRTC when the browser and the server can, else the WebSocket;
 * `?transport=websocket` (or `webrtc`) forces one. */
const TRANSPORT = /** @type {'auto'|'webrtc'|'websocket'} */ (
  ['webrtc', 'websocket'].includes(params.get('transport') || '') ? params.get('transport') : 'auto');
const SETTINGS_KEY = 'parley.settings.v1';
const USER_KEY = 'parley.userId';
const TOKEN_KEY = 'parley.token';
/** The sign-in token of a gateway that requires one (null: none, as on a dev gateway without auth). */
const TOKEN = takeToken();

/**
 * The token of the link `parley up` prints (`/#token=…`: a fragment never reaches the server nor
 * its logs), kept in this tab's sessionStorage so a reload still works, and taken out of the
 * address bar so it is not shared with a copied URL or left in history. Without one in the link,
 * the tab's stored one.
 * @returns {string|null}
 */
function takeToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromLink = fragment.get('token');
  if (!fromLink) {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  }
  try {
    sessionStorage.setItem(TOKEN_KEY, fromLink);
  } catch {
    /* storage off: this page load works, a reload will ask for the link again */
  }
  fragment.delete('token');
  const rest = fragment.toString();
  history.replaceState(history.state, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
  return fromLink;
}

const PROVIDER_LABELS = {
  local: 'Local (offline)',
  whisper: 'OpenAI Whisper',
  openai: 'OpenAI',
  groq: 'Groq',
  deepgram: 'Deepgram',
  assemblyai: 'AssemblyAI',
  anthropic: 'Anthropic Claude',
  elevenlabs: 'ElevenLabs',
  playht: 'PlayHT',
  scripted: 'Scripted (testing)',
};
const STYLE_HELP = {
  concise: 'Short, direct answers — quick questions and FAQs.',
  conversational: 'Natural back-and-forth dialogue — the everyday choice.',
  detailed: 'Thorough explanations for teaching and complex topics.',
};
const SENSITIVITY_HELP = {
  low: 'Waits 2 s of silence; the assistant finishes before it can be interrupted.',
  medium: 'Waits 1 s of silence; start talking to interrupt the assistant.',
  high: 'Waits 0.5 s of silence; the quickest to interrupt.',
};
const STATUS_TEXT = {
  idle: 'Ready',
  starting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  ended: 'Call ended',
};

// -- elements ----------------------------------------------------------------------------------
const el = {
  main: $('main'),
  status: $('call-status'),
  network: $('network'),
  networkLabel: $('network-label'),
  timer: /** @type {HTMLTimeElement} */ ($('call-timer')),
  banner: $('banner'),
  bannerTitle: $('banner-title'),
  bannerMessage: $('banner-message'),
  bannerAction: /** @type {HTMLButtonElement} */ ($('banner-action')),
  bannerDismiss: $('banner-dismiss'),
  canvas: /** @type {HTMLCanvasElement} */ ($('visualizer')),
  start: /** @type {HTMLButtonElement} */ ($('start-call')),
  startLabel: $('start-label'),
  hint: $('stage-hint'),
  latency: $('latency'),
  micLevel: $('mic-level'),
  aiLevel: $('ai-level'),
  avatar: /** @type {HTMLElement} */ (document.querySelector('.avatar')),
  mute: /** @type {HTMLButtonElement} */ ($('mute-button')),
  interrupt: /** @type {HTMLButtonElement} */ ($('interrupt-button')),
  transcriptToggle: /** @type {HTMLButtonElement} */ ($('transcript-toggle')),
  end: /** @type {HTMLButtonElement} */ ($('end-call')),
  form: /** @type {HTMLFormElement} */ ($('settings-form')),
  fieldset: /** @type {HTMLFieldSetElement} */ ($('settings-fieldset')),
  reset: $('settings-reset'),
  stt: /** @type {HTMLSelectElement} */ ($('settings-stt')),
  llm: /** @type {HTMLSelectElement} */ ($('settings-llm')),
  tts: /** @type {HTMLSelectElement} */ ($('settings-tts')),
  sttNote: $('stt-note'),
  llmNote: $('llm-note'),
  ttsNote: $('tts-note'),
  voice: /** @type {HTMLSelectElement} */ ($('settings-voice')),
  voiceStatus: $('voice-status'),
  language: /** @type {HTMLSelectElement} */ ($('settings-language')),
  prompt: /** @type {HTMLTextAreaElement} */ ($('settings-prompt')),
  emotion: /** @type {HTMLInputElement} */ ($('settings-emotion')),
  styleHelp: $('style-help'),
  sensitivityHelp: $('sensitivity-help'),
  transcriptList: $('transcript-list'),
  transcriptEmpty: $('transcript-empty'),
  transcriptCount: $('transcript-count'),
  composer: /** @type {HTMLFormElement} */ ($('composer')),
  input: /** @type {HTMLInputElement} */ ($('text-input')),
  send: /** @type {HTMLButtonElement} */ ($('send-button')),
};

// -- state -------------------------------------------------------------------------------------
const api = new ParleyApi({ apiUrl: API_URL, token: TOKEN });
const log = new ConversationLog();
/** @type {'idle'|'starting'|'live'|'reconnecting'|'ended'} */
let callState = 'idle';
/** @type {null | {client: ParleyClient, mic: MicCapture, player: AudioPlayer, stream: MediaStream|null, userEnded: boolean, finished: boolean, detach?: () => void}} */
let call = null;
/** @type {AudioContext|null} */
let audioCtx = null;
let muted = false;
let assistantSpeaking = false;
let timerStart = /** @type {number|null} */ (null);
let timerHandle = /** @type {any} */ (null);
let lastSummary = '';
/** The last call, kept so its numbers stay readable after it ended. */
let lastCall = /** @type {typeof call} */ (null);
let lastSessionId = /** @type {string|null} */ (null);
const voicesCache = new Map();

const settings = loadSettings();

function loadSettings() {
  const base = {
    stt_provider: DEFAULT_CONFIG.stt_provider,
    llm_provider: DEFAULT_CONFIG.llm_provider,
    tts_provider: DEFAULT_CONFIG.tts_provider,
    voice: '',
    language: 'en',
    response_style: DEFAULT_CONFIG.response_style,
    interrupt_sensitivity: DEFAULT_CONFIG.interrupt_sensitivity,
    system_prompt: '',
    detect_emotion: false,
    transcript_visible: true,
  };
  try {
    const saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) || '{}');
    return { ...base, ...(saved && typeof saved === 'object' ? saved : {}) };
  } catch {
    return base;
  }
}

function saveSettings() {
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
  } catch {
    /* private mode: settings just are not remembered */
  }
}

function userId() {
  const fromUrl = params.get('user');
  if (fromUrl) return fromUrl;
  // Signed in, the user is the token's: naming another one would be refused.
  if (TOKEN) return null;
  try {
    let id = localStorage.getItem(USER_KEY);
    if (!id) {
      id = `web-${Math.random().toString(36).slice(2, 10)}`;
      localStorage.setItem(USER_KEY, id);
    }
    return id;
  } catch {
    return 'web-anonymous';
  }
}

/** The session config sent with POST /api/v1/sessions. */
function sessionConfig() {
  return {
    stt_provider: settings.stt_provider,
    llm_provider: settings.llm_provider,
    tts_provider: settings.tts_provider,
    voice: settings.voice || null,
    language: settings.language === 'auto' ? null : settings.language,
    response_style: settings.response_style,
    interrupt_sensitivity: settings.interrupt_sensitivity,
    system_prompt: settings.system_prompt.trim() || null,
    detect_emotion: !!settings.detect_emotion,
    // The browser cancels echo itself (getUserMedia's echoCancellation, audio.js).
    echo_cancellation: 'client',
  };
}

// -- settings form -----------------------------------------------------------------------------
const PROVIDER_KINDS = /** @type {const} */ ({
  stt: 'speech recognition',
  llm: 'assistant model',
  tts: 'voice provider',
});
/** Why a kind has no usable provider (null when it has one); shown under its picker. */
const providerProblems = { stt: /** @type {string|null} */ (null), llm: /** @type {string|null} */ (null), tts: /** @type {string|null} */ (null) };
/** Workers that are still starting answer later: the pickers are asked again meanwhile. */
const PROVIDERS_RETRY_MS = 5000;
let providersRetry = /** @type {any} */ (null);

/** @param {string} name */
function providerLabel(name) {
  return PROVIDER_LABELS[/** @type {keyof PROVIDER_LABELS} */ (name)] || name;
}

/**
 * Offer the usable providers; the others are listed disabled, with the server's reason.
 * @param {keyof typeof PROVIDER_KINDS} kind
 * @param {import('./lib/parley-client.js').ProviderStatus[]} items
 * @param {string} selected
 */
function fillProviderSelect(kind, items, selected) {
  const select = el[kind];
  const note = el[`${kind}Note`];
  const usable = items.filter((i) => i.available);
  const unusable = items.filter((i) => !i.available);
  select.replaceChildren(...usable.map((it) => new Option(providerLabel(it.name), it.name)));
  if (unusable.length) {
    const group = document.createElement('optgroup');
    group.label = 'Not available on this server';
    for (const it of unusable) {
      const opt = new Option(`${providerLabel(it.name)} — ${it.reason || 'unavailable'}`, it.name);
      opt.disabled = true;
      opt.title = it.reason || 'Not available on this server';
      group.append(opt);
    }
    select.append(group);
  }
  const names = usable.map((i) => i.name);
  select.value = names.includes(selected) ? selected : names[0] || '';
  const reasons = [...new Set(unusable.map((i) => i.reason).filter(Boolean))];
  providerProblems[kind] = usable.length
    ? null
    : `No ${PROVIDER_KINDS[kind]} is available${reasons.length ? `: ${reasons.join('; ')}` : ''}.`;
  note.textContent = providerProblems[kind] || '';
}

async function loadProviders() {
  /** @type {import('./lib/parley-client.js').ProvidersView} */
  let lists;
  let reachable = true;
  try {
    lists = await api.listProviders();
  } catch (err) {
    reachable = false;
    // Offer the local providers only; the server is not there to say what else works.
    const local = [{ name: 'local', available: true, reason: null }];
    lists = { stt: local, llm: local, tts: local };
    if (needsSignIn(/** @type {any} */ (err))) {
      showBanner({ kind: 'error', sticky: true, ...explain(/** @type {any} */ (err)) });
    } else if (/** @type {any} */ (err).code === 'server_unreachable') {
      showBanner({
        kind: 'warning',
        title: 'Can’t reach the Parley server',
        message: `Nothing answered at ${api.base}. Start the server, then reload this page.`,
        action: { label: 'Retry', run: () => { hideBanner(); loadProviders(); } },
      });
    }
  }
  fillProviderSelect('stt', lists.stt, settings.stt_provider);
  fillProviderSelect('llm', lists.llm, settings.llm_provider);
  fillProviderSelect('tts', lists.tts, settings.tts_provider);
  readForm();
  clearTimeout(providersRetry);
  if (reachable && Object.values(providerProblems).some(Boolean)) providersRetry = setTimeout(loadProviders, PROVIDERS_RETRY_MS);
  if (reachable) await loadVoices();
}

async function loadVoices() {
  const provider = el.tts.value;
  const token = (loadVoices.seq = (loadVoices.seq || 0) + 1);
  if (!provider) {
    el.voice.replaceChildren(new Option('Default voice', ''));
    el.voiceStatus.textContent = '';
    return; // no voice provider to ask: its note says why
  }
  el.voiceStatus.textContent = 'Loading voices…';
  el.voice.setAttribute('aria-busy', 'true');
  let voices = voicesCache.get(provider);
  if (!voices) {
    try {
      const res = await api.listVoices(provider);
      voices = Array.isArray(res && res.voices) ? res.voices : [];
      voicesCache.set(provider, voices);
    } catch (err) {
      voices = null;
    }
  }
  if (token !== loadVoices.seq) return; // a newer provider was picked meanwhile
  el.voice.removeAttribute('aria-busy');
  el.voice.replaceChildren(new Option('Default voice', ''));
  if (!voices) {
    el.voiceStatus.textContent = 'Couldn’t load voices; the provider’s default voice will be used.';
  } else {
    const lang = settings.language === 'auto' ? null : settings.language;
    const sorted = [...voices].sort((a, b) => Number(langMatch(b, lang)) - Number(langMatch(a, lang)));
    // The caller's cloned voices (custom: true) first, in a group of their own.
    const mine = Object.assign(document.createElement('optgroup'), { label: 'My voices' });
    for (const v of sorted) {
      const id = v.id || v.voice_id || v.name;
      if (!id) continue;
      const name = v.name || id;
      const language = v.language || v.lang;
      (v.custom ? mine : el.voice).append(new Option(language ? `${name} · ${language}` : name, id));
    }
    if (mine.children.length) el.voice.insertBefore(mine, el.voice.children[1] || null);
    el.voiceStatus.textContent = voices.length ? '' : 'This provider has a single default voice.';
  }
  const ids = [...el.voice.options].map((o) => o.value);
  el.voice.value = ids.includes(settings.voice) ? settings.voice : '';
  settings.voice = el.voice.value;
  saveSettings();
}
/** @type {number} */
loadVoices.seq = 0;

/** @param {any} v @param {string|null} lang */
function langMatch(v, lang) {
  const l = String(v.language || v.lang || '').toLowerCase();
  return !!lang && (l === lang || l.startsWith(`${lang}-`) || l.startsWith(`${lang}_`));
}

function writeForm() {
  el.language.value = [...el.language.options].some((o) => o.value === settings.language) ? settings.language : 'en';
  el.prompt.value = settings.system_prompt || '';
  el.emotion.checked = !!settings.detect_emotion;
  for (const name of ['response_style', 'interrupt_sensitivity']) {
    const input = /** @type {HTMLInputElement|null} */ (el.form.querySelector(`input[name="${name}"][value="${settings[name]}"]`));
    if (input) input.checked = true;
  }
  updateHelp();
}

function readForm() {
  // An empty picker (nothing usable yet) keeps the saved choice: a call started meanwhile asks
  // for it, and the server says what is wrong if it still is.
  settings.stt_provider = el.stt.value || settings.stt_provider;
  settings.llm_provider = el.llm.value || settings.llm_provider;
  settings.tts_provider = el.tts.value || settings.tts_provider;
  settings.voice = el.voice.value;
  settings.language = el.language.value;
  settings.system_prompt = el.prompt.value;
  settings.detect_emotion = el.emotion.checked;
  const style = /** @type {HTMLInputElement|null} */ (el.form.querySelector('input[name="response_style"]:checked'));
  const sens = /** @type {HTMLInputElement|null} */ (el.form.querySelector('input[name="interrupt_sensitivity"]:checked'));
  if (style) settings.response_style = style.value;
  if (sens) settings.interrupt_sensitivity = sens.value;
  updateHelp();
  saveSettings();
}

function updateHelp() {
  el.styleHelp.textContent = STYLE_HELP[/** @type {keyof STYLE_HELP} */ (settings.response_style)] || '';
  el.sensitivityHelp.textContent = SENSITIVITY_HELP[/** @type {keyof SENSITIVITY_HELP} */ (settings.interrupt_sensitivity)] || '';
}

el.form.addEventListener('change', (e) => {
  readForm();
  if (e.target === el.tts || e.target === el.language) loadVoices();
});
el.prompt.addEventListener('input', () => readForm());
el.form.addEventListener('submit', (e) => e.preventDefault());
el.reset.addEventListener('click', () => {
  Object.assign(settings, {
    stt_provider: 'local', llm_provider: 'local', tts_provider: 'local', voice: '', language: 'en',
    response_style: 'conversational', interrupt_sensitivity: 'medium', system_prompt: '',
  });
  for (const s of [el.stt, el.llm, el.tts]) {
    const usable = [...s.options].filter((o) => !o.disabled).map((o) => o.value);
    s.value = usable.includes('local') ? 'local' : usable[0] || '';
  }
  writeForm();
  readForm();
  loadVoices();
});

// -- banner ------------------------------------------------------------------------------------
let bannerTimer = /** @type {any} */ (null);
/**
 * `sticky`: the banner says why the call ended, so it stays when the call is wound up.
 * @param {{kind?: 'error'|'warning'|'info', title: string, message?: string, action?: {label: string, run: () => void}, autoHideMs?: number, sticky?: boolean}} b
 */
function showBanner(b) {
  clearTimeout(bannerTimer);
  el.banner.dataset.kind = b.kind || 'error';
  el.banner.dataset.sticky = String(!!b.sticky);
  el.bannerTitle.textContent = b.title;
  el.bannerMessage.textContent = b.message || '';
  if (b.action) {
    el.bannerAction.hidden = false;
    el.bannerAction.textContent = b.action.label;
    el.bannerAction.onclick = b.action.run;
  } else {
    el.bannerAction.hidden = true;
    el.bannerAction.onclick = null;
  }
  el.banner.hidden = false;
  if (b.autoHideMs) bannerTimer = setTimeout(hideBanner, b.autoHideMs);
}
function hideBanner() {
  clearTimeout(bannerTimer);
  el.banner.hidden = true;
}
el.bannerDismiss.addEventListener('click', hideBanner);

/**
 * Whether the gateway refused the page's token (or the lack of one): REST 401, socket 4401.
 * @param {{code?: string, status?: number|null}} err
 */
function needsSignIn(err) {
  return err.status === 401 || err.code === 'unauthenticated';
}

const SIGN_IN_HOW = 'open the link `parley up` printed (it ends in #token=…), or run `parley token --user NAME`.';

/**
 * A message a person understands for an error code.
 * @param {{code?: string, message?: string, status?: number|null}} err
 */
function explain(err) {
  const code = String(err.code || '');
  const msg = err.message || '';
  if (needsSignIn(err)) {
    return TOKEN
      ? { title: 'Sign-in token not accepted', message: `The server said: ${msg || 'the token is not valid'}. To sign in again, ${SIGN_IN_HOW}` }
      : { title: 'Sign-in needed', message: `This Parley needs a sign-in token: ${SIGN_IN_HOW}` };
  }
  if (err.status === 403 || code === 'forbidden') {
    return { title: 'Not allowed', message: msg || 'Your sign-in token does not allow this.' };
  }
  switch (code) {
    case 'server_unreachable':
      return { title: 'Can’t reach the Parley server', message: `Nothing answered at ${api.base}. Check that the server is running and try again.` };
    case 'validation_error':
    case 'http_422':
      return { title: 'Some settings weren’t accepted', message: msg || 'Check the call settings and try again.' };
    case 'session_replaced':
      return { title: 'This call continues in another window', message: 'It was opened in another tab or window, which now has it. Start a new call here to talk in this window.' };
    case 'session_not_found':
    case 'session_ended':
    case 'session_closed':
      return { title: 'The call has ended', message: msg };
    case 'reconnect_failed':
      return { title: 'Connection lost', message: 'We couldn’t reconnect to the call. Check your network and start a new call.' };
    case 'protocol_error':
      return { title: 'Something went wrong', message: msg || 'The server and this page disagree; reload the page.' };
    default:
      break;
  }
  if (code.startsWith('mic_') || code === 'audio_unsupported') {
    const titles = { mic_denied: 'Microphone blocked', mic_not_found: 'No microphone found', mic_busy: 'Microphone unavailable', mic_insecure: 'Microphone needs a secure page' };
    return { title: titles[/** @type {keyof titles} */ (code)] || 'Microphone problem', message: msg };
  }
  if (/^http_5\d\d$/.test(code) || (err.status != null && err.status >= 500)) {
    return { title: 'The server ran into a problem', message: msg && !/^The server answered/.test(msg) ? msg : 'Please try again in a moment.' };
  }
  const c = code.toLowerCase();
  let title = 'Something went wrong';
  if (/stt|transcri|recogni/.test(c)) title = 'Speech recognition problem';
  else if (/tts|voice|synth/.test(c)) title = 'Voice problem';
  else if (/llm|model|completion/.test(c)) title = 'Assistant problem';
  else if (/provider|quota|rate|auth|key/.test(c)) title = 'Provider problem';
  return { title, message: msg || code };
}

// -- call state --------------------------------------------------------------------------------
/** @param {typeof callState} s */
function setCallState(s) {
  callState = s;
  el.main.dataset.call = s;
  document.body.dataset.call = s;
  el.status.dataset.state = s === 'ended' ? 'idle' : s;
  el.status.textContent = STATUS_TEXT[s];
  const inCall = s === 'live' || s === 'reconnecting';
  el.fieldset.disabled = s === 'starting' || inCall;
  el.reset.toggleAttribute('disabled', s === 'starting' || inCall);
  el.start.disabled = s === 'starting';
  el.start.setAttribute('aria-label', s === 'starting' ? 'Connecting the call' : 'Start call');
  el.startLabel.textContent = s === 'starting' ? 'Connecting…' : 'Start Call';
  el.end.disabled = !inCall;
  el.mute.disabled = !inCall;
  el.input.disabled = !inCall;
  el.send.disabled = !inCall || !el.input.value.trim();
  updateInterrupt();
  if (s === 'idle') setHint('Tap to start a conversation');
  if (s === 'starting') setHint('Allow the microphone when your browser asks…');
  if (s === 'ended') setHint(lastSummary || 'Call ended. Start a new one any time.');
  if (s === 'live') setHint(assistantSpeaking ? speakingHint() : 'Listening — just start talking');
}

/** @param {string} text */
function setHint(text) {
  if (el.hint.textContent !== text) el.hint.textContent = text;
}

function speakingHint() {
  return settings.interrupt_sensitivity === 'low' ? 'Speaking…' : 'Speaking — talk to interrupt';
}

function updateInterrupt() {
  el.interrupt.disabled = !(callState === 'live' && assistantSpeaking);
}

/** @param {boolean} speaking */
function setAssistantSpeaking(speaking) {
  assistantSpeaking = speaking;
  updateInterrupt();
  if (callState === 'live') setHint(speaking ? speakingHint() : 'Listening — just start talking');
}

// -- timer -------------------------------------------------------------------------------------
/** @param {number} totalSeconds */
function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}
function startTimer() {
  if (timerStart != null) return;
  timerStart = performance.now();
  renderTimer();
  timerHandle = setInterval(renderTimer, 250);
}
function renderTimer() {
  if (timerStart == null) return;
  const secs = (performance.now() - timerStart) / 1000;
  const text = formatDuration(secs);
  if (el.timer.textContent !== text) {
    el.timer.textContent = text;
    el.timer.dateTime = `PT${Math.floor(secs)}S`;
  }
}
function stopTimer() {
  renderTimer();
  clearInterval(timerHandle);
  timerHandle = null;
  timerStart = null;
}

// -- network indicator -------------------------------------------------------------------------
/** @param {{rttMs: number|null, jitterMs: number|null, reconnects: number, quality: string}} n */
function renderNetwork(n) {
  el.network.dataset.quality = n.quality;
  const words = { good: 'Good', fair: 'Fair', poor: 'Poor', unknown: 'Measuring' };
  const word = words[/** @type {keyof words} */ (n.quality)] || 'Measuring';
  el.networkLabel.textContent = n.rttMs != null ? `${word} · ${Math.round(n.rttMs)} ms` : word;
  const detail = n.rttMs != null
    ? `round trip ${Math.round(n.rttMs)} ms, jitter ${Math.round(n.jitterMs || 0)} ms, ${n.reconnects} reconnect${n.reconnects === 1 ? '' : 's'}`
    : 'not measured yet';
  el.network.setAttribute('aria-label', `Network quality: ${word.toLowerCase()} (${detail})`);
  el.network.title = `Network: ${word} — ${detail}`;
}

// -- transcript --------------------------------------------------------------------------------
/** @type {Map<string, HTMLLIElement>} */
const rendered = new Map();

/** @param {number} c */
function confidenceLevel(c) {
  if (c >= 0.85) return 'high';
  if (c >= 0.6) return 'medium';
  return 'low';
}

/** @param {import('./lib/parley-client.js').LogEntry} e @param {HTMLLIElement} li */
function renderEntry(e, li) {
  li.className = 'msg';
  li.dataset.role = e.role;
  li.dataset.final = String(e.final);
  li.dataset.testid = 'transcript-entry';
  li.dataset.interrupted = String(e.interrupted);
  if (e.turnId != null) li.dataset.turnId = String(e.turnId);
  const who = e.role === 'user' ? 'You' : e.role === 'assistant' ? 'Assistant' : 'System';
  const meta = document.createElement('div');
  meta.className = 'msg-meta';
  const name = document.createElement('span');
  name.textContent = who;
  meta.append(name);
  if (e.role === 'user' && e.typed) {
    const t = document.createElement('span');
    t.className = 'badge';
    t.textContent = 'typed';
    meta.append(t);
  } else if (e.final && e.confidence != null) {
    const b = document.createElement('span');
    b.className = 'badge';
    b.dataset.testid = 'confidence';
    b.dataset.level = confidenceLevel(e.confidence);
    b.textContent = `${Math.round(e.confidence * 100)}%`;
    b.title = 'Recognition confidence';
    b.setAttribute('aria-label', `confidence ${Math.round(e.confidence * 100)} percent`);
    meta.append(b);
  } else if (!e.final) {
    const t = document.createElement('span');
    t.textContent = e.role === 'user' ? 'listening…' : 'speaking…';
    meta.append(t);
  }
  if (e.role === 'user' && e.emotion) meta.append(emotionBadge(e.emotion));
  const bubble = document.createElement('div');
  bubble.className = 'msg-bubble';
  bubble.textContent = e.text || (e.final ? '' : '…');
  const parts = [meta, bubble];
  if (e.interrupted) {
    const i = document.createElement('span');
    i.className = 'msg-interrupted';
    i.dataset.testid = 'interrupted-mark';
    i.textContent = '— interrupted';
    parts.push(i);
  }
  li.replaceChildren(...parts);
}

function renderTranscript() {
  const list = el.transcriptList;
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const ids = new Set(log.entries.map((e) => e.id));
  for (const [id, li] of rendered) {
    if (!ids.has(id)) {
      li.remove();
      rendered.delete(id);
    }
  }
  for (const e of log.entries) {
    let li = rendered.get(e.id);
    if (!li) {
      li = document.createElement('li');
      rendered.set(e.id, li);
      list.append(li);
    }
    renderEntry(e, li);
  }
  const n = log.entries.length;
  el.transcriptEmpty.hidden = n > 0;
  el.transcriptCount.textContent = n ? `${n} message${n === 1 ? '' : 's'}` : '';
  if (nearBottom) list.scrollTop = list.scrollHeight;
}
log.on('change', renderTranscript);

/** @param {boolean} visible */
function setTranscriptVisible(visible) {
  el.main.dataset.transcript = visible ? 'shown' : 'hidden';
  el.transcriptToggle.setAttribute('aria-pressed', String(visible));
  el.transcriptToggle.setAttribute('aria-label', visible ? 'Hide transcript' : 'Show transcript');
  settings.transcript_visible = visible;
  saveSettings();
}
el.transcriptToggle.addEventListener('click', () => setTranscriptVisible(el.main.dataset.transcript === 'hidden'));

// -- visualiser --------------------------------------------------------------------------------
const ctx2d = /** @type {CanvasRenderingContext2D} */ (el.canvas.getContext('2d'));
const micData = new Float32Array(1024);
const aiData = new Float32Array(1024);
let micLevelSmooth = 0;
let aiLevelSmooth = 0;

function sizeCanvas() {
  const r = el.canvas.getBoundingClientRect();
  const dpr = Math.min(window.devicePixelRatio || 1, 2);
  const w = Math.max(1, Math.round(r.width * dpr));
  const h = Math.max(1, Math.round(r.height * dpr));
  if (el.canvas.width !== w || el.canvas.height !== h) {
    el.canvas.width = w;
    el.canvas.height = h;
  }
}

/** @param {AnalyserNode|null|undefined} analyser @param {Float32Array} buf */
function readAnalyser(analyser, buf) {
  if (!analyser) {
    buf.fill(0);
    return 0;
  }
  analyser.getFloatTimeDomainData(buf);
  let s = 0;
  for (let i = 0; i < buf.length; i++) s += buf[i] * buf[i];
  return Math.sqrt(s / buf.length);
}

/** RMS -> 0..1 on a -60..-12 dBFS scale. @param {number} rms */
function levelOf(rms) {
  if (rms <= 0) return 0;
  const db = 20 * Math.log10(rms);
  return Math.min(1, Math.max(0, (db + 60) / 48));
}

/**
 * A closed ring whose radius follows the waveform.
 * @param {number} cx @param {number} cy @param {number} radius @param {Float32Array} data
 * @param {number} amp @param {string} color @param {number} width @param {number} t
 */
function drawRing(cx, cy, radius, data, amp, color, width, t) {
  const n = 180;
  const step = Math.floor(data.length / n) || 1;
  ctx2d.beginPath();
  for (let i = 0; i <= n; i++) {
    const k = i % n;
    const a = (k / n) * Math.PI * 2 - Math.PI / 2;
    // Mirror the window so the ring closes without a seam.
    const idx = (k < n / 2 ? k : n - k) * step * 2;
    const v = data[Math.min(idx, data.length - 1)] || 0;
    const wobble = Math.sin(a * 3 + t * 0.9) * 0.6 + Math.sin(a * 5 - t * 1.3) * 0.4;
    const r = radius + v * amp + wobble * 1.2;
    const x = cx + Math.cos(a) * r;
    const y = cy + Math.sin(a) * r;
    if (i === 0) ctx2d.moveTo(x, y);
    else ctx2d.lineTo(x, y);
  }
  ctx2d.closePath();
  ctx2d.strokeStyle = color;
  ctx2d.lineWidth = width;
  ctx2d.stroke();
}

function frame(/** @type {number} */ now) {
  requestAnimationFrame(frame);
  sizeCanvas();
  const w = el.canvas.width;
  const h = el.canvas.height;
  const cx = w / 2;
  const cy = h / 2;
  const t = now / 1000;
  const unit = Math.min(w, h);
  ctx2d.clearRect(0, 0, w, h);

  const micRms = call ? readAnalyser(call.mic.analyser, micData) : (micData.fill(0), 0);
  const aiRms = call ? readAnalyser(call.player.analyser, aiData) : (aiData.fill(0), 0);
  micLevelSmooth += (levelOf(micRms) - micLevelSmooth) * 0.35;
  aiLevelSmooth += (levelOf(aiRms) - aiLevelSmooth) * 0.35;
  el.micLevel.style.width = `${Math.round(micLevelSmooth * 100)}%`;
  el.aiLevel.style.width = `${Math.round(aiLevelSmooth * 100)}%`;
  el.avatar.style.setProperty('--ai-level', aiLevelSmooth.toFixed(3));

  const live = callState === 'live' || callState === 'reconnecting';
  const base = unit * (live ? 0.22 : 0.25);
  // Soft glow, brighter with the assistant's voice.
  const glow = ctx2d.createRadialGradient(cx, cy, base * 0.6, cx, cy, unit * 0.5);
  const breathe = live ? 0.16 + aiLevelSmooth * 0.35 : 0.12 + Math.sin(t * 1.6) * 0.04;
  glow.addColorStop(0, `rgba(139,123,255,${breathe.toFixed(3)})`);
  glow.addColorStop(1, 'rgba(139,123,255,0)');
  ctx2d.fillStyle = glow;
  ctx2d.fillRect(0, 0, w, h);

  const lw = Math.max(1.5, unit / 160);
  if (!live) {
    for (let i = 0; i < 3; i++) {
      const phase = (t * 0.35 + i / 3) % 1;
      ctx2d.beginPath();
      ctx2d.arc(cx, cy, base + phase * unit * 0.22, 0, Math.PI * 2);
      ctx2d.strokeStyle = `rgba(168,155,255,${(0.35 * (1 - phase)).toFixed(3)})`;
      ctx2d.lineWidth = lw;
      ctx2d.stroke();
    }
    return;
  }
  // Assistant: outer violet ring; you: inner cyan ring.
  drawRing(cx, cy, base + unit * 0.14, aiData, unit * 0.16, 'rgba(139,123,255,0.95)', lw * 1.4, t);
  drawRing(cx, cy, base + unit * 0.14, aiData, unit * 0.09, 'rgba(139,123,255,0.35)', lw, t + 1);
  drawRing(cx, cy, base + unit * 0.045, micData, unit * 0.12, 'rgba(34,211,238,0.95)', lw * 1.2, t * 1.2);
}
requestAnimationFrame(frame);

// -- the call ----------------------------------------------------------------------------------
async function startCall() {
  if (call || callState === 'starting') return;
  hideBanner();
  readForm();
  setCallState('starting');
  try {
    if (!audioCtx || audioCtx.state === 'closed') audioCtx = createAudioContext();
    // Resume inside the click so autoplay rules let the assistant's voice play.
    audioCtx.resume().catch(() => {});
  } catch (err) {
    return failStart(describeMicError(err));
  }
  const player = new AudioPlayer({ context: audioCtx, prebufferMs: 80 });
  const playerReady = player.init().then(() => null, (err) => err);

  /** @type {MediaStream} */
  let stream;
  try {
    stream = await requestMicrophone();
  } catch (err) {
    player.close();
    return failStart(describeMicError(err));
  }
  const playerErr = await playerReady;
  if (playerErr) {
    stream.getTracks().forEach((tr) => tr.stop());
    return failStart(describeMicError(Object.assign(playerErr, { name: 'audio_unsupported' })));
  }
  player.setMuted(muted);

  const mic = new MicCapture({ context: audioCtx });
  const client = new ParleyClient({
    api, // with the page's token
    userId: userId(),
    config: sessionConfig(),
    player,
    createCapture: () => mic,
    transport: TRANSPORT,
  });
  call = { client, mic, player, stream, userEnded: false, finished: false };
  const thisCall = call;
  log.clear();
  rendered.forEach((li) => li.remove());
  rendered.clear();
  renderTranscript();
  const detachLog = log.attach(client);
  wireClient(client, thisCall, detachLog);
  player.onDrained = () => {
    if (call === thisCall) setAssistantSpeaking(false);
  };

  try {
    await client.start();
  } catch (err) {
    if (call === thisCall) {
      cleanupCall(thisCall);
      call = null;
      const e = /** @type {any} */ (err);
      // Connection-level failures were already shown by the error handler.
      if (!['reconnect_failed', 'unauthenticated', 'forbidden', 'session_not_found', 'session_replaced', 'session_ended', 'session_closed'].includes(e.code)) failStart(e);
      else setCallState('idle');
    }
    return;
  }
  if (call !== thisCall) return;
  try {
    await client.startMicrophone(stream);
  } catch (err) {
    showBanner({ kind: 'error', ...explain(describeMicError(err)) });
    await endCall();
    return;
  }
  setCallState('live');
  startTimer();
  el.end.focus({ preventScroll: true });
}

/** @param {{code?: string, message?: string}} err */
function failStart(err) {
  setCallState('idle');
  showBanner({ kind: 'error', ...explain(err) });
}

/**
 * @param {ParleyClient} client
 * @param {NonNullable<typeof call>} thisCall
 * @param {() => void} detachLog
 */
function wireClient(client, thisCall, detachLog) {
  thisCall.detach = detachLog;
  client.on('ready', (r) => {
    if (r.resumed) showBanner({ kind: 'info', title: 'Reconnected', message: 'The call continues where it left off.', autoHideMs: 3000 });
  });
  client.on('state', (s) => {
    if (call !== thisCall) return;
    if (s.state === 'connected' && callState === 'reconnecting') setCallState('live');
    else if (s.state === 'reconnecting') {
      const wait = s.delayMs != null ? ` in ${Math.max(1, Math.round(s.delayMs / 1000))} s` : '';
      if (callState === 'live' || callState === 'reconnecting') {
        setCallState('reconnecting');
        setAssistantSpeaking(false);
        showBanner({ kind: 'warning', title: 'Connection lost — reconnecting…', message: `Attempt ${s.attempt}${wait}. Your conversation is kept.` });
      } else {
        showBanner({ kind: 'warning', title: 'Still connecting…', message: `The server did not answer yet; retrying (attempt ${s.attempt}${wait}).` });
      }
    } else if (s.state === 'closed' && !thisCall.userEnded && callState !== 'starting') {
      finishCall(thisCall);
    }
  });
  client.on('network', renderNetwork);
  client.on('error', (e) => {
    if (call !== thisCall) return;
    if (e.source === 'http') return; // shown where the request was made
    // Replaced is not a failure: the same call goes on in the other window.
    showBanner({ kind: e.code === 'session_replaced' ? 'warning' : 'error', sticky: e.fatal, ...explain(e) });
  });
  client.on('speechStarted', () => {
    if (callState === 'live' && !assistantSpeaking) setHint('Listening…');
  });
  client.on('transcript', (t) => {
    if (t.role === 'user' && t.isFinal && callState === 'live' && !assistantSpeaking && t.text) setHint('Thinking…');
  });
  client.on('audioStart', () => setAssistantSpeaking(true));
  client.on('interrupted', () => setAssistantSpeaking(false));
  client.on('action', (a) => {
    if (call !== thisCall) return;
    if (a.action === 'switch_to_text') {
      showBanner({ kind: 'info', title: 'Continue in text', message: 'The assistant suggests typing from here; the box below sends your message.', autoHideMs: 6000 });
      el.input.focus();
    } else if (a.action === 'end_call') {
      showBanner({ kind: 'info', title: 'The assistant is ending the call', message: 'The call ends once it has said goodbye.', autoHideMs: 6000 });
    }
  });
  client.on('metrics', (m) => {
    if (m.voiceToVoiceMs != null) {
      el.latency.hidden = false;
      el.latency.textContent = `Last reply in ${(m.voiceToVoiceMs / 1000).toFixed(2)} s`;
    }
  });
}

/** Stop the audio of a call (not the session). @param {NonNullable<typeof call>} c */
function cleanupCall(c) {
  if (c.finished) return;
  c.finished = true;
  try { c.mic.stop(); } catch { /* ignore */ }
  if (c.stream) c.stream.getTracks().forEach((tr) => tr.stop());
  try { c.player.flush('end'); } catch { /* ignore */ }
  setTimeout(() => c.player.close(), 200);
  if (c.detach) c.detach();
}

/** The call is over (ended by us, by the server, or lost for good). @param {NonNullable<typeof call>} c */
function finishCall(c) {
  lastCall = c;
  lastSessionId = c.client.sessionId;
  cleanupCall(c);
  if (call === c) call = null;
  stopTimer();
  setAssistantSpeaking(false);
  const turns = log.entries.filter((e) => e.role === 'user').length;
  lastSummary = `Call ended · ${el.timer.textContent}${turns ? ` · ${turns} turn${turns === 1 ? '' : 's'}` : ''}`;
  el.network.dataset.quality = 'unknown';
  if (el.banner.dataset.kind !== 'error' && el.banner.dataset.sticky !== 'true') hideBanner();
  setCallState('ended');
  el.start.focus({ preventScroll: true });
}

async function endCall() {
  const c = call;
  if (!c) return;
  c.userEnded = true;
  el.end.disabled = true;
  cleanupCall(c);
  try {
    await c.client.end();
  } finally {
    finishCall(c);
  }
}

// -- controls ----------------------------------------------------------------------------------
el.start.addEventListener('click', startCall);
el.end.addEventListener('click', endCall);
el.mute.addEventListener('click', () => {
  muted = !muted;
  el.mute.setAttribute('aria-pressed', String(muted));
  el.mute.querySelector('.control-label').textContent = muted ? 'Unmute' : 'Mute';
  el.mute.setAttribute('aria-label', muted ? 'Unmute assistant audio' : 'Mute assistant audio');
  if (call) call.player.setMuted(muted);
});
el.interrupt.addEventListener('click', () => {
  if (call) {
    call.client.interrupt();
    setAssistantSpeaking(false);
  }
});
el.input.addEventListener('input', () => {
  el.send.disabled = el.input.disabled || !el.input.value.trim();
});
el.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = el.input.value.trim();
  if (!text || !call) return;
  try {
    call.client.sendText(text);
  } catch (err) {
    showBanner({ kind: 'error', title: 'Message not sent', message: /** @type {Error} */ (err).message });
    return;
  }
  log.addTyped(text);
  el.input.value = '';
  el.send.disabled = true;
  if (callState === 'live') setHint('Thinking…');
});
document.addEventListener('keydown', (e) => {
  // Escape stops the assistant talking (outside text fields).
  if (e.key === 'Escape' && call && assistantSpeaking && !(e.target instanceof HTMLTextAreaElement)) {
    call.client.interrupt();
    setAssistantSpeaking(false);
  }
});
// Leaving the page ends the session so it does not linger on the server.
window.addEventListener('pagehide', () => {
  if (!call || !call.client.sessionId) return;
  call.client.api.endSession(call.client.sessionId, { keepalive: true }).catch(() => { /* best effort */ });
});

// -- debug hook for end-to-end tests -----------------------------------------------------------
/** @type {any} */ (window).parleyDebug = {
  get state() { return call ? call.client.state : callState === 'ended' ? 'closed' : 'idle'; },
  get callState() { return callState; },
  get sessionId() { return call ? call.client.sessionId : lastSessionId; },
  get transport() { const c = call || lastCall; return c ? c.client.transport : null; },
  get counters() {
    const c = call || lastCall;
    return {
      framesSent: c ? c.client.stats.framesSent : 0,
      chunksReceived: c ? c.client.stats.chunksReceived : 0,
      samplesPlayed: c ? c.player.counters.samplesPlayed : 0,
      flushes: c ? c.player.counters.flushes : 0,
    };
  },
  get timerText() { return el.timer.textContent; },
  get network() { return call ? { ...call.client.network } : null; },
  get transcript() { return log.entries.map((e) => ({ ...e })); },
  get client() { return call ? call.client : null; },
  settings,
};
// -- my voices -----------------------------------------------------------------------------------
/** A cloned voice became ready (`select`: pick it for the next call) or was deleted. */
initMyVoices({
  api,
  onChange: ({ provider, select }) => {
    voicesCache.delete(provider);
    const usable = [...el.tts.options].some((o) => o.value === provider && !o.disabled);
    if (select && usable) {
      el.tts.value = settings.tts_provider = provider;
      settings.voice = select;
      saveSettings();
    }
    if (el.tts.value === provider) loadVoices();
  },
});

// -- boot --------------------------------------------------------------------------------------
writeForm();
setTranscriptVisible(settings.transcript_visible !== false);
setCallState('idle');
renderTranscript();
loadProviders();
if (!window.isSecureContext) {
  showBanner({
    kind: 'warning',
    title: 'The microphone needs a secure page',
    message: 'Open Parley over https:// or on localhost to talk.',
  });
}
