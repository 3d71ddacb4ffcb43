// Diffutron chat page: plain ES2020, no dependencies, served by diffutron-serve (same origin).
// Each answer is streamed with `canvas: true`, and every canvas is drawn from its runs of text
// and of masked positions (the server sends them as data), the masks as blank boxes that fill
// in, step by step. A ░ or any other character in an answer is only ever drawn as text.
"use strict";

(() => {
  const STORE = "diffutron.";
  const SETTINGS = [
    // [field, kind]: only the fields a user filled are sent; empty means "the model's own".
    ["max_tokens", "int"],
    ["steps", "int"],
    ["block_length", "int"],
    ["temperature", "float"],
    ["threshold", "float"],
    ["repetition_penalty", "float"],
    ["seed", "int"],
  ];

  const $ = (id) => document.getElementById(id);
  const el = {
    log: $("log"),
    empty: $("empty"),
    status: $("status"),
    composer: $("composer"),
    prompt: $("prompt"),
    send: $("send"),
    stop: $("stop"),
    clear: $("clear"),
    model: $("model"),
    settings: $("settings"),
    reset: $("reset"),
    apiKey: $("api_key"),
    system: $("system"),
  };

  /** The conversation as sent to the server: [{role, content}], user and assistant turns. */
  let history = [];
  let modelId = null;
  let controller = null; // the AbortController of the answer in flight, if any
  let epoch = 0; // bumped by "New chat": an answer of an older chat leaves the history alone

  // ---------------------------------------------------------------- storage

  const store = {
    get(name) {
      try {
        return localStorage.getItem(STORE + name);
      } catch {
        return null; // storage may be disabled (private mode, file policies)
      }
    },
    set(name, value) {
      try {
        if (value === "" || value == null) localStorage.removeItem(STORE + name);
        else localStorage.setItem(STORE + name, value);
      } catch {
        /* not kept: fine */
      }
    },
  };

  function restoreSettings() {
    for (const [name] of SETTINGS) {
      const value = store.get(name);
      if (value !== null) $(name).value = value;
    }
    el.system.value = store.get("system") || "";
    el.apiKey.value = store.get("api_key") || "";
  }

  function saveSettings() {
    for (const [name] of SETTINGS) store.set(name, $(name).value.trim());
    store.set("system", el.system.value);
  }

  /** The sampler fields the user filled, checked; throws an Error naming a wrong one. */
  function readSettings() {
    const out = {};
    for (const [name, kind] of SETTINGS) {
      const input = $(name);
      const raw = input.value.trim();
      if (raw === "") {
        if (input.validity.badInput) throw new Error(`${labelOf(input)}: sayı değil / not a number`);
        continue;
      }
      const value = Number(raw);
      if (!Number.isFinite(value) || (kind === "int" && !Number.isInteger(value))) {
        const what = kind === "int" ? "tam sayı olmalı / must be a whole number" : "sayı olmalı / must be a number";
        throw new Error(`${labelOf(input)}: ${what}`);
      }
      out[name] = value;
    }
    return out;
  }

  function labelOf(input) {
    const label = document.querySelector(`label[for="${input.id}"]`);
    return label ? label.textContent.trim() : input.id;
  }

  // ---------------------------------------------------------------- HTTP

  function headers(post) {
    const h = { Accept: post ? "text/event-stream" : "application/json" };
    if (post) h["Content-Type"] = "application/json";
    const key = el.apiKey.value.trim();
    if (key) h.Authorization = `Bearer ${key}`;
    return h;
  }

  /** The message of an error response: OpenAI's {"error": {"message"}} or the status line. */
  async function errorOf(response) {
    let text = "";
    try {
      text = await response.text();
      const body = JSON.parse(text);
      if (body && body.error) {
        return typeof body.error === "string" ? body.error : body.error.message || JSON.stringify(body.error);
      }
      if (body && body.detail) return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch {
      /* not JSON */
    }
    return `HTTP ${response.status} ${response.statusText}${text ? `: ${text.slice(0, 300)}` : ""}`;
  }

  async function loadModel() {
    try {
      const response = await fetch("/v1/models", { headers: headers(false) });
      if (!response.ok) {
        modelId = null;
        el.model.textContent = "?";
        const message = await errorOf(response);
        setStatus(response.status === 401 ? `API anahtarı gerekli / API key required: ${message}` : message, "error");
        return null;
      }
      const body = await response.json();
      modelId = body && body.data && body.data[0] ? body.data[0].id : null;
      el.model.textContent = modelId || "?";
      el.model.title = modelId ? `Model: ${modelId}` : "Model yok / no model";
      if (!controller) setStatus("Hazır / Ready");
      return modelId;
    } catch (err) {
      el.model.textContent = "?";
      setStatus(`Sunucuya ulaşılamadı / Server unreachable: ${err.message}`, "error");
      return null;
    }
  }

  /**
   * Reads a Server-Sent Events body, calling onData(text) with the data of each event (the
   * `data:` lines of one event joined by newlines). Events are separated by blank lines.
   * onData may return a promise (it is awaited: a canvas gets painted before the next one).
   */
  async function readEvents(body, onData) {
    const reader = body.getReader();
    const decoder = new TextDecoder("utf-8");
    let buffer = "";
    const flush = async (final) => {
      // split off every complete event; keep the tail (an event still arriving)
      const parts = buffer.split(/\r\n\r\n|\n\n|\r\r/);
      buffer = final ? "" : parts.pop();
      for (const part of parts) {
        const data = [];
        for (const line of part.split(/\r\n|\n|\r/)) {
          if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        }
        if (data.length && (await onData(data.join("\n"))) === false) return false;
      }
      return true;
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          buffer += decoder.decode();
          await flush(true);
          return;
        }
        buffer += decoder.decode(value, { stream: true });
        if ((await flush(false)) === false) {
          await reader.cancel().catch(() => {});
          return;
        }
      }
    } catch (err) {
      await reader.cancel().catch(() => {});
      throw err;
    } finally {
      reader.releaseLock();
    }
  }

  // ---------------------------------------------------------------- rendering

  function setStatus(text, kind) {
    el.status.textContent = text;
    el.status.dataset.kind = kind || "";
  }

  function hideEmpty() {
    if (el.empty && el.empty.parentNode) el.empty.remove();
  }

  /** What scrolls the chat: the log itself, or the whole page on a narrow screen. */
  function scroller() {
    return getComputedStyle(el.log).overflowY === "visible"
      ? document.scrollingElement || document.documentElement
      : el.log;
  }

  function atBottom() {
    const box = scroller();
    return box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  }

  function scrollDown(force) {
    if (force || atBottom()) {
      const box = scroller();
      box.scrollTop = box.scrollHeight;
    }
  }

  function addTurn(role) {
    hideEmpty();
    const turn = document.createElement("article");
    turn.className = `turn ${role}`;
    const who = document.createElement("h3");
    who.className = "who";
    who.textContent = role === "user" ? "Siz / You" : "Diffutron";
    const body = document.createElement("div");
    body.className = "body";
    turn.append(who, body);
    el.log.append(turn);
    return { turn, body };
  }

  function addUser(text) {
    const { turn, body } = addTurn("user");
    turn.dataset.testid = "question";
    body.textContent = text;
    scrollDown(true);
    return turn;
  }

  function addAnswer() {
    const { turn, body } = addTurn("assistant");
    turn.dataset.testid = "answer";
    turn.dataset.done = "false";
    turn.setAttribute("aria-busy", "true");
    body.classList.add("canvas", "live");
    body.dataset.testid = "canvas";
    const progress = document.createElement("div");
    progress.className = "progress";
    progress.setAttribute("aria-hidden", "true");
    const bar = document.createElement("span");
    progress.append(bar);
    const meta = document.createElement("p");
    meta.className = "meta";
    meta.textContent = "Bekleniyor… / Waiting…";
    turn.append(progress, meta);
    scrollDown(true);
    return { turn, body, bar, meta };
  }

  /** Draws a canvas into `node` from its spans: {"text"} runs as text, {"masks": n} as n
   *  empty boxes. */
  function drawCanvas(node, spans) {
    const frag = document.createDocumentFragment();
    for (const span of spans) {
      if (span && typeof span.text === "string") {
        frag.append(document.createTextNode(span.text));
      } else if (span && Number.isInteger(span.masks)) {
        for (let i = 0; i < span.masks; i++) {
          const box = document.createElement("span");
          box.className = "mask";
          box.setAttribute("aria-hidden", "true");
          frag.append(box);
        }
      }
    }
    node.replaceChildren(frag);
  }

  const stepText = (step, masks) =>
    `adım ${step} · ${masks} maske kaldı / step ${step} · ${masks} masks left`;

  /** Lets the browser paint (one frame, or a timer when frames are throttled); no wait while
   *  the page is hidden: nobody sees it, and timers are slowed down there. */
  function paint() {
    if (document.hidden) return Promise.resolve();
    return new Promise((resolve) => {
      let settled = false;
      const done = () => {
        if (!settled) {
          settled = true;
          resolve();
        }
      };
      requestAnimationFrame(() => setTimeout(done, 0));
      setTimeout(done, 50);
    });
  }

  // ---------------------------------------------------------------- one answer

  async function send() {
    if (controller) return; // one answer at a time
    const text = el.prompt.value;
    if (!text.trim()) {
      el.prompt.focus();
      return;
    }
    let settings;
    try {
      settings = readSettings();
    } catch (err) {
      setStatus(err.message, "error");
      return;
    }
    saveSettings();

    el.prompt.value = "";
    const question = addUser(text);
    history.push({ role: "user", content: text });
    const view = addAnswer();
    controller = new AbortController();
    busy(true);
    setStatus("Gönderiliyor… / Sending…");

    const mine = epoch;
    const state = { final: "", canvas: null, step: 0, masks: null, first: null, reason: null, finished: false };
    let outcome = "complete";
    let problem = null;
    try {
      if (!modelId && !(await loadModel())) throw new Error(el.status.textContent || "model yok / no model");
      const messages = [...history];
      const system = el.system.value.trim();
      if (system) messages.unshift({ role: "system", content: system });
      const body = { model: modelId, messages, stream: true, canvas: true, ...settings };
      const response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: headers(true),
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!response.ok) throw new Error(await errorOf(response));
      if (!response.body) throw new Error("Akış desteklenmiyor / streaming is not supported by this browser");
      setStatus("Çözülüyor… / Denoising…");

      await readEvents(response.body, async (data) => {
        if (data.trim() === "[DONE]") {
          state.finished = true;
          return false;
        }
        let chunk;
        try {
          chunk = JSON.parse(data);
        } catch {
          return true; // not ours: skip
        }
        if (chunk.error) {
          throw new Error(typeof chunk.error === "string" ? chunk.error : chunk.error.message || "error");
        }
        const choice = chunk.choices && chunk.choices[0];
        if (choice) {
          if (choice.delta && typeof choice.delta.content === "string") state.final += choice.delta.content;
          if (choice.finish_reason) state.reason = choice.finish_reason;
        }
        if (chunk.canvas && Array.isArray(chunk.canvas.spans)) {
          const { step, spans, masks } = chunk.canvas;
          state.canvas = spans;
          state.step = Number.isFinite(step) ? step : state.step + 1;
          state.masks = Number.isFinite(masks) ? masks : spans.reduce((n, s) => n + (Number.isInteger(s.masks) ? s.masks : 0), 0);
          if (state.first === null || state.masks > state.first) state.first = state.masks;
          const stick = atBottom();
          drawCanvas(view.body, spans);
          view.body.dataset.step = String(state.step);
          view.body.dataset.masks = String(state.masks);
          const line = stepText(state.step, state.masks);
          view.meta.textContent = line;
          setStatus(line);
          view.bar.style.width = `${state.first ? (100 * (state.first - state.masks)) / state.first : 100}%`;
          scrollDown(stick);
          await paint(); // every step shows at least once, even when steps arrive together
        } else if (state.canvas === null && state.final) {
          view.body.textContent = state.final; // a server without canvases: plain streaming
        }
        return true;
      });
      if (!state.finished && !state.reason) throw new Error("Bağlantı erken kapandı / the stream ended early");
    } catch (err) {
      if (err && err.name === "AbortError") outcome = "stopped";
      else {
        outcome = "error";
        problem = err && err.message ? err.message : String(err);
      }
    } finally {
      controller = null;
      busy(false);
    }
    if (mine === epoch) finish(view, question, state, outcome, problem);
  }

  /** Ends an answer: its final text (kept in the history), or why there is none. */
  function finish(view, question, state, outcome, problem) {
    const { turn, body, meta, bar } = view;
    body.classList.remove("live");
    turn.removeAttribute("aria-busy");
    const steps = state.step ? `${state.step} adım / steps` : "";
    if (outcome === "complete") {
      const text = state.final;
      body.textContent = text;
      if (!text) body.classList.add("blank");
      history.push({ role: "assistant", content: text });
      bar.style.width = "100%";
      const reason = state.reason ? ` · ${state.reason}` : "";
      meta.textContent = `${text ? "" : "(boş yanıt / empty answer) · "}${steps}${reason}`.replace(/ · $/, "");
      setStatus(`Tamamlandı / Done${steps ? ` · ${steps}` : ""}`);
    } else if (outcome === "stopped") {
      turn.classList.add("stopped");
      body.textContent = state.final; // what the model had committed; no half-drawn canvas
      if (!state.final) body.classList.add("blank");
      if (state.final) {
        history.push({ role: "assistant", content: state.final });
        meta.textContent = `Durduruldu / Stopped${steps ? ` · ${steps}` : ""}`;
      } else {
        forget(question, turn);
        meta.textContent = "Durduruldu; geçmişe eklenmedi / Stopped; not kept in the history";
      }
      setStatus("Durduruldu / Stopped");
    } else {
      turn.classList.add("error");
      forget(question, turn);
      body.classList.remove("canvas");
      body.textContent = problem;
      body.setAttribute("role", "alert");
      meta.textContent = "Hata; geçmişe eklenmedi / Error; not kept in the history";
      setStatus(`Hata / Error: ${problem}`, "error");
      if (!el.prompt.value) el.prompt.value = question.querySelector(".body").textContent;
    }
    turn.dataset.state = outcome;
    turn.dataset.done = "true";
    scrollDown(false);
    el.prompt.focus();
  }

  /** Takes an unanswered question out of the history (the conversation stays user/assistant). */
  function forget(question, answerTurn) {
    const last = history[history.length - 1];
    if (last && last.role === "user") history.pop();
    question.classList.add("dropped");
    answerTurn.classList.add("dropped");
  }

  function busy(on) {
    el.send.disabled = on;
    el.stop.disabled = !on;
    el.composer.setAttribute("aria-busy", on ? "true" : "false");
  }

  // ---------------------------------------------------------------- wiring

  el.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  el.prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      send();
    }
  });
  el.stop.addEventListener("click", () => {
    if (controller) controller.abort();
  });
  el.clear.addEventListener("click", () => {
    if (controller) controller.abort();
    epoch += 1;
    history = [];
    el.log.replaceChildren();
    if (el.empty) el.log.append(el.empty);
    setStatus("Yeni sohbet / New chat");
    el.prompt.focus();
  });
  el.settings.addEventListener("change", saveSettings);
  el.settings.addEventListener("submit", (event) => event.preventDefault());
  el.reset.addEventListener("click", () => {
    for (const [name] of SETTINGS) $(name).value = "";
    el.system.value = "";
    saveSettings();
    setStatus("Modelin ayarları / The model's own settings");
  });
  el.apiKey.addEventListener("change", () => {
    store.set("api_key", el.apiKey.value.trim());
    loadModel();
  });

  restoreSettings();
  if (window.matchMedia && window.matchMedia("(max-width: 52rem)").matches) {
    $("settings-box").open = false; // a phone: the chat first, the settings one tap away
  }
  busy(false);
  loadModel();
})();
