// The labelling page (paper 3.2, Figure 3(d)): one clip in a loop with the face box drawn on every frame,
// the scene's and the expressions' introductions, 26 words under 7 expressions plus PASS, keyboard
// shortcuts, "n of m" progress. PRs also get the gold queue, the review queue and the relabel queue.
// Text from the server is only ever set with textContent: a title with HTML in it stays text.
"use strict";

const $ = (id) => document.getElementById(id);
const QUEUE_NAMES = { label: "Label", gold: "Gold items", relabel: "Relabel", review: "Review" };

const state = {
  me: null,
  queue: null,
  item: null,
  word: null,
  shownAt: 0,
  keys: new Map(), // key -> word
  busy: false,
};

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: {}, ...options };
  if (init.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(init.body);
  }
  const res = await fetch(path, init);
  const data = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) {
    const detail = data && data.detail;
    const message = typeof detail === "string" ? detail : JSON.stringify(detail ?? res.statusText);
    const err = new Error(message);
    err.status = res.status;
    throw err;
  }
  return data;
}

// ---------------------------------------------------------------------------------------------- login

async function start() {
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", onLogout);
  $("submit").addEventListener("click", submit);
  $("pass").addEventListener("click", () => choose("PASS"));
  document.addEventListener("keydown", onKey);
  setupOverlay();
  try {
    enter(await api("/api/me"));
  } catch {
    showLogin();
  }
}

function showLogin() {
  $("main").hidden = true;
  $("login").hidden = false;
  $("token").focus();
}

async function onLogin(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    enter(await api("/api/login", { method: "POST", body: { token: $("token").value.trim() } }));
    $("token").value = "";
  } catch (err) {
    $("login-error").textContent = err.status === 401 ? "Unknown, expired or revoked token." : err.message;
  }
}

async function onLogout() {
  await api("/api/logout", { method: "POST" });
  state.me = null;
  $("clip").removeAttribute("src");
  showLogin();
}

async function enter(me) {
  state.me = me;
  $("login").hidden = true;
  $("main").hidden = false;
  $("who").textContent = `${me.name} (${me.role === "PR" ? "professional researcher" : "annotator"})`;
  const tabs = $("tabs");
  tabs.replaceChildren();
  const queues = me.role === "PR" ? ["gold", "review", "relabel"] : ["label"];
  for (const q of queues) {
    const b = el("button", { type: "button", "data-queue": q, text: QUEUE_NAMES[q] });
    b.addEventListener("click", () => openQueue(q));
    tabs.append(b);
  }
  await buildChoices();
  await openQueue(queues[0]);
}

// ---------------------------------------------------------------------------------------------- choices

async function buildChoices() {
  const vocab = await api("/api/vocabulary");
  const box = $("expressions");
  box.replaceChildren();
  state.keys.clear();
  for (const expr of vocab.expressions) {
    const set = el("fieldset", { "data-expression": expr.name }, el("legend", { text: expr.name }));
    set.append(el("p", { class: "desc", text: expr.description }));
    for (const w of expr.words) {
      const b = el("button", { type: "button", class: "word", "data-word": w.word, "aria-pressed": "false" });
      if (w.key) {
        b.append(el("kbd", { text: w.key }), " ");
        state.keys.set(w.key, w.word);
      }
      b.append(w.word);
      b.addEventListener("click", () => choose(w.word));
      set.append(b);
    }
    box.append(set);
  }
  state.keys.set(vocab.pass.key, vocab.pass.word);
}

function choose(word) {
  if (!state.item) return;
  state.word = word;
  for (const b of document.querySelectorAll("button.word")) {
    b.setAttribute("aria-pressed", String(b.dataset.word === word));
  }
  $("chosen").textContent = word;
  $("submit").disabled = false;
}

function onKey(event) {
  const t = event.target;
  if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement) return;
  if (event.ctrlKey || event.metaKey || event.altKey || $("labeller").hidden) return;
  if (event.key === "Enter") {
    event.preventDefault();
    submit();
    return;
  }
  const word = state.keys.get(event.key.toLowerCase());
  if (word) {
    event.preventDefault();
    choose(word);
  }
}

// ---------------------------------------------------------------------------------------------- queues

async function openQueue(queue) {
  state.queue = queue;
  for (const b of $("tabs").querySelectorAll("button")) {
    if (b.dataset.queue === queue) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  $("label-error").textContent = "";
  if (queue === "review") {
    $("labeller").hidden = true;
    $("empty").hidden = true;
    await showReviews();
    return;
  }
  $("reviews").hidden = true;
  await loadNext();
}

async function loadNext() {
  const { item } = await api(`/api/next?queue=${encodeURIComponent(state.queue)}`);
  show(item);
  // A new copy (or none left): the reviewers may have said something about the last one.
  if (state.me.role === "CA" && (!item || item.progress.index === 1)) await showFeedback();
}

function show(item) {
  state.item = item;
  state.word = null;
  $("chosen").textContent = "";
  $("submit").disabled = true;
  for (const b of document.querySelectorAll("button.word")) b.setAttribute("aria-pressed", "false");
  const video = $("clip");
  if (!item) {
    $("labeller").hidden = true;
    $("empty").hidden = false;
    video.removeAttribute("src");
    video.load();
    document.body.dataset.taskId = "";
    return;
  }
  $("empty").hidden = true;
  $("labeller").hidden = false;
  $("scene-name").textContent = item.scene.scenario
    ? `${item.scene.scene} (${item.scene.scenario})`
    : item.scene.scene;
  $("scene-desc").textContent = item.scene.description;
  $("title").textContent = item.title ? `From the video: ${item.title}` : "";
  $("progress").textContent = `${item.progress.index} of ${item.progress.total}`;
  $("queue-name").textContent = `(${QUEUE_NAMES[item.queue]})`;
  document.body.dataset.taskId = item.task_id;
  overlay.boxes = item.boxes;
  overlay.frames = 0;
  video.src = item.video_url;
  video.play().catch(() => {}); // autoplay of a muted video is allowed; a refusal leaves the controls
  state.shownAt = performance.now();
}

async function submit() {
  if (!state.item || !state.word || state.busy) return;
  state.busy = true;
  $("label-error").textContent = "";
  const body = {
    task_id: state.item.task_id,
    word: state.word,
    time_spent_s: Math.round(performance.now() - state.shownAt) / 1000,
  };
  try {
    await api("/api/answers", { method: "POST", body });
    await loadNext();
  } catch (err) {
    $("label-error").textContent = err.message;
  } finally {
    state.busy = false;
  }
}

// ---------------------------------------------------------------------------------------------- feedback

async function showFeedback() {
  const items = await api("/api/feedback");
  const list = $("feedback-list");
  list.replaceChildren();
  for (const f of items) {
    const what = f.decision ? `${f.decision}ed` : "sent back";
    list.append(el("li", { text: `Group ${f.group_id}, copy ${f.copy}, round ${f.round} (${f.verdict}, ${what}): ${f.feedback}` }));
  }
  $("feedback").hidden = items.length === 0;
}

// ---------------------------------------------------------------------------------------------- review

function pct(x) {
  return x === null || x === undefined ? "n/a" : `${Math.round(x * 100)}%`;
}

async function showReviews() {
  const copies = await api("/api/pr/reviews");
  const list = $("review-list");
  list.replaceChildren();
  $("reviews").hidden = false;
  $("reviews-empty").hidden = copies.length > 0;
  for (const c of copies) list.append(reviewCard(c));
}

function reviewCard(c) {
  const card = el("div", { class: "copy", "data-assignment": String(c.assignment_id) });
  card.append(
    el("h3", { text: `Group ${c.group_id}, copy ${c.copy}, round ${c.round}: ${c.verdict} (annotator ${c.annotator_id})` }),
    el("p", {
      text: `Estimated correct rate ${pct(c.estimate)} [${pct(c.ci_low)}, ${pct(c.ci_high)}]; ` +
        `${c.n_gold_correct} of ${c.n_gold_answered} gold items right (${c.n_gold} gold, ${c.n_items} items).`,
    }),
  );
  const table = el("table", {}, el("tr", {}, el("th", { text: "clip" }), el("th", { text: "answer" }), el("th", { text: "gold label" })));
  for (const it of c.items) {
    table.append(el("tr", {}, el("td", { text: it.clip_id }), el("td", { text: it.word ?? "" }), el("td", { text: it.gold ? it.gold_label ?? "PASS" : "" })));
  }
  card.append(table);
  const fb = el("textarea", { placeholder: "Feedback the annotator will see", "aria-label": "feedback" });
  card.append(fb);
  const send = async (decision) => {
    try {
      await api(`/api/pr/reviews/${c.assignment_id}`, { method: "POST", body: { decision, feedback: fb.value } });
      await showReviews();
    } catch (err) {
      card.append(el("p", { class: "error", text: err.message }));
    }
  };
  if (c.needs_decision) {
    const ok = el("button", { type: "button", text: "Accept" });
    const no = el("button", { type: "button", text: "Reject" });
    ok.addEventListener("click", () => send("accept"));
    no.addEventListener("click", () => send("reject"));
    card.append(ok, " ", no);
  } else {
    const b = el("button", { type: "button", text: "Send feedback" });
    b.addEventListener("click", () => send(null));
    card.append(b);
  }
  return card;
}

// ---------------------------------------------------------------------------------------------- face box

// boxes: [[t, x1, y1, x2, y2], ...], t in seconds from the clip's start, coordinates as fractions of the
// frame. The box of a frame between two samples is interpolated linearly; outside them, the nearest.
function boxAt(boxes, t) {
  if (!boxes || boxes.length === 0) return null;
  if (t <= boxes[0][0]) return boxes[0].slice(1);
  const last = boxes[boxes.length - 1];
  if (t >= last[0]) return last.slice(1);
  let i = 1;
  while (boxes[i][0] < t) i += 1;
  const a = boxes[i - 1];
  const b = boxes[i];
  const w = b[0] === a[0] ? 0 : (t - a[0]) / (b[0] - a[0]);
  return [1, 2, 3, 4].map((k) => a[k] + w * (b[k] - a[k]));
}

const overlay = { boxes: [], frames: 0 };

function drawFrame(mediaTime) {
  const video = $("clip");
  const canvas = $("overlay");
  const cw = video.clientWidth;
  const ch = video.clientHeight;
  if (canvas.width !== cw || canvas.height !== ch) {
    canvas.width = cw;
    canvas.height = ch;
  }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, cw, ch);
  const box = video.videoWidth ? boxAt(overlay.boxes, mediaTime) : null;
  if (!box) {
    delete canvas.dataset.box;
    return;
  }
  // The picture is letterboxed inside the element (object-fit: contain): scale to its displayed size.
  const scale = Math.min(cw / video.videoWidth, ch / video.videoHeight);
  const ox = (cw - video.videoWidth * scale) / 2;
  const oy = (ch - video.videoHeight * scale) / 2;
  const [x1, y1, x2, y2] = [
    ox + box[0] * video.videoWidth * scale,
    oy + box[1] * video.videoHeight * scale,
    ox + box[2] * video.videoWidth * scale,
    oy + box[3] * video.videoHeight * scale,
  ];
  ctx.lineWidth = 3;
  ctx.strokeStyle = "#00e676";
  ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
  overlay.frames += 1;
  canvas.dataset.box = [x1, y1, x2, y2].map((v) => v.toFixed(1)).join(",");
  canvas.dataset.mediaTime = mediaTime.toFixed(3);
  canvas.dataset.frames = String(overlay.frames);
}

function setupOverlay() {
  const video = $("clip");
  if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
    // Called once per presented video frame, with that frame's own timestamp.
    const onFrame = (_now, meta) => {
      drawFrame(meta.mediaTime);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  } else {
    const tick = () => {
      if (!video.paused) drawFrame(video.currentTime);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }
  video.addEventListener("seeked", () => drawFrame(video.currentTime));
  window.addEventListener("resize", () => drawFrame(video.currentTime));
}

start();
