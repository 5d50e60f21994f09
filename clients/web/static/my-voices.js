// "My voices" on the call page: the caller's cloned voices, and the form that clones one from
// recordings (S1's POST /api/voice/clone) with drag-and-drop, upload progress and its status.
// The page's own script picks a ready voice in its voice picker through `onChange`.

import { snakeCase } from './lib/parley-client.js';

/** How often a voice still being cloned is asked about, and for how long at most. */
const POLL_MS = 1000;
const POLL_LIMIT_MS = 10 * 60 * 1000;
const STATUS_LABELS = { processing: 'Cloning…', ready: 'Ready', failed: 'Failed' };

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * @typedef {{id: string, name: string, description: string|null, provider: string, status: 'processing'|'ready'|'failed',
 *   error: string|null, sample_count: number, total_duration_seconds: number, warnings: string[]}} CustomVoice
 * @typedef {{provider: string, select?: string}} VoicesChange
 */

/**
 * Wire the "My voices" card. `api` is the page's ParleyApi (its base URL and token);
 * `onChange` hears of a voice that became ready (`select`: its id) or was deleted.
 * @param {{api: import('./lib/parley-client.js').ParleyApi, onChange: (change: VoicesChange) => void}} opts
 */
export function initMyVoices({ api, onChange }) {
  const el = {
    list: $('my-voices-list'),
    empty: $('my-voices-empty'),
    count: $('my-voices-count'),
    form: /** @type {HTMLFormElement} */ ($('clone-form')),
    name: /** @type {HTMLInputElement} */ ($('clone-name')),
    description: /** @type {HTMLInputElement} */ ($('clone-description')),
    provider: /** @type {HTMLSelectElement} */ ($('clone-provider')),
    drop: $('clone-drop'),
    files: /** @type {HTMLInputElement} */ ($('clone-files')),
    chosen: $('clone-chosen'),
    progress: /** @type {HTMLProgressElement} */ ($('clone-progress')),
    status: $('clone-status'),
    submit: /** @type {HTMLButtonElement} */ ($('clone-submit')),
  };
  /** @type {File[]} */
  let picked = [];
  let busy = false;

  /** @param {string} text @param {'info'|'error'|'ok'} [kind] */
  function say(text, kind = 'info') {
    el.status.textContent = text;
    el.status.dataset.kind = kind;
  }

  function renderPicked() {
    el.chosen.replaceChildren(
      ...picked.map((f) => {
        const li = document.createElement('li');
        li.textContent = `${f.name} · ${(f.size / 1e6).toFixed(1)} MB`;
        return li;
      }),
    );
    el.drop.dataset.files = String(picked.length);
  }

  /** @param {FileList|File[]|null} files */
  function addFiles(files) {
    if (!files) return;
    picked = [...picked, ...Array.from(files)];
    renderPicked();
    say(picked.length ? `${picked.length} recording${picked.length === 1 ? '' : 's'} chosen.` : '');
  }

  /** @param {CustomVoice} v */
  function renderVoice(v) {
    const li = document.createElement('li');
    li.className = 'my-voice';
    li.dataset.testid = 'my-voice';
    li.dataset.voiceId = v.id;
    li.dataset.status = v.status;
    const head = document.createElement('div');
    head.className = 'my-voice-head';
    const name = document.createElement('strong');
    name.textContent = v.name;
    const badge = document.createElement('span');
    badge.className = 'my-voice-status';
    badge.dataset.testid = 'my-voice-status';
    badge.textContent = STATUS_LABELS[v.status] || v.status;
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'link-button';
    remove.textContent = 'Delete';
    remove.disabled = v.status === 'processing';
    remove.setAttribute('aria-label', `Delete the voice ${v.name}`);
    remove.addEventListener('click', () => deleteVoice(v));
    head.append(name, badge, remove);
    const meta = document.createElement('span');
    meta.className = 'field-note';
    const minutes = (v.total_duration_seconds / 60).toFixed(1);
    meta.textContent = `${v.provider} · ${v.sample_count} sample${v.sample_count === 1 ? '' : 's'} · ${minutes} min`;
    li.append(head, meta);
    for (const line of v.status === 'failed' && v.error ? [v.error] : v.warnings || []) {
      const note = document.createElement('span');
      note.className = 'field-note my-voice-note';
      note.textContent = line;
      li.append(note);
    }
    return li;
  }

  async function refresh() {
    /** @type {CustomVoice[]} */
    let voices;
    try {
      voices = (await api.request('GET', '/api/v1/voices/custom')).voices || [];
    } catch {
      return; // the page's own banner says when the server cannot be reached
    }
    el.list.replaceChildren(...voices.map(renderVoice));
    el.empty.hidden = voices.length > 0;
    el.count.textContent = voices.length ? `${voices.length}` : '';
  }

  /** @param {CustomVoice} v */
  async function deleteVoice(v) {
    try {
      await api.request('DELETE', `/api/v1/voices/custom/${encodeURIComponent(v.id)}`);
      say(`“${v.name}” was deleted.`, 'ok');
      onChange({ provider: v.provider });
    } catch (err) {
      say(`“${v.name}” was not deleted: ${/** @type {Error} */ (err).message}`, 'error');
    }
    await refresh();
  }

  /**
   * POST the form with upload progress (fetch cannot report it).
   * @param {FormData} body
   * @returns {Promise<{status: number, json: any}>}
   */
  async function upload(body) {
    const token = await api.resolveToken();
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', `${api.base}/api/voice/clone`);
      xhr.setRequestHeader('Accept', 'application/json');
      if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
      xhr.upload.addEventListener('progress', (e) => {
        if (!e.lengthComputable) return;
        el.progress.value = Math.round((e.loaded / e.total) * 100);
        say(e.loaded < e.total ? `Uploading… ${el.progress.value}%` : 'Checking the recordings and cloning…');
      });
      xhr.addEventListener('load', () => {
        let json = null;
        try {
          json = JSON.parse(xhr.responseText);
        } catch {
          /* not JSON: said below from the status */
        }
        resolve({ status: xhr.status, json });
      });
      xhr.addEventListener('error', () => reject(new Error(`Could not reach the Parley server at ${api.base}`)));
      xhr.send(body);
    });
  }

  /** @param {any} json @param {number} status */
  function refusal(json, status) {
    const error = json && json.error;
    if (!error) return `The server answered HTTP ${status}.`;
    const why = (error.details || []).map((/** @type {any} */ d) => d.msg).filter(Boolean);
    return why.length ? `${error.message} ${why.join(' ')}` : error.message;
  }

  /** @param {CustomVoice} voice */
  async function untilCloned(voice) {
    const until = Date.now() + POLL_LIMIT_MS;
    let current = voice;
    while (current.status === 'processing' && Date.now() < until) {
      say(`“${current.name}” is being cloned…`);
      await new Promise((r) => setTimeout(r, POLL_MS));
      try {
        current = await api.request('GET', `/api/v1/voices/custom/${encodeURIComponent(voice.id)}`);
      } catch {
        /* try again on the next tick */
      }
      await refresh();
    }
    return current;
  }

  async function submit() {
    if (busy) return;
    const name = el.name.value.trim();
    if (!name) {
      say('Give the voice a name.', 'error');
      el.name.focus();
      return;
    }
    if (!picked.length) {
      say('Add at least one recording of the voice.', 'error');
      return;
    }
    const body = new FormData();
    body.append('name', name);
    if (el.description.value.trim()) body.append('description', el.description.value.trim());
    body.append('provider', el.provider.value);
    for (const f of picked) body.append('samples', f, f.name);
    busy = true;
    el.submit.disabled = true;
    el.progress.hidden = false;
    el.progress.value = 0;
    say('Uploading…');
    try {
      const { status, json } = await upload(body);
      if (status < 200 || status >= 300 || !json || !json.voice) {
        say(refusal(json, status), 'error');
        return;
      }
      const voice = /** @type {CustomVoice} */ (snakeKeys(json.voice));
      picked = [];
      renderPicked();
      el.form.reset();
      await refresh();
      const done = await untilCloned(voice);
      if (done.status === 'ready') {
        say(`“${done.name}” is ready and chosen as the call’s voice.`, 'ok');
        onChange({ provider: done.provider, select: done.id });
      } else if (done.status === 'failed') {
        say(`“${done.name}” could not be cloned: ${done.error || 'try other recordings'}`, 'error');
      } else {
        say(`“${done.name}” is still being cloned; it will show here when it is ready.`);
      }
    } catch (err) {
      say(/** @type {Error} */ (err).message, 'error');
    } finally {
      busy = false;
      el.submit.disabled = false;
      el.progress.hidden = true;
      await refresh();
    }
  }

  el.files.addEventListener('change', () => {
    addFiles(el.files.files);
    el.files.value = ''; // the same file may be chosen again
  });
  for (const type of ['dragenter', 'dragover']) {
    el.drop.addEventListener(type, (e) => {
      e.preventDefault();
      el.drop.dataset.over = 'true';
    });
  }
  el.drop.addEventListener('dragleave', () => delete el.drop.dataset.over);
  el.drop.addEventListener('drop', (e) => {
    e.preventDefault();
    delete el.drop.dataset.over;
    addFiles(/** @type {DragEvent} */ (e).dataTransfer?.files ?? null);
  });
  el.form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });
  el.form.addEventListener('reset', () => {
    picked = [];
    renderPicked();
  });
  refresh();
  return { refresh };
}

/** S1's camelCase voice as the v1 routes name its fields. @param {Record<string, any>} v */
function snakeKeys(v) {
  return Object.fromEntries(Object.entries(v).map(([k, val]) => [snakeCase(k), val]));
}
