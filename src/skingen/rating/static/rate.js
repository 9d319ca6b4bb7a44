// skingen rating page: plain JavaScript, no build step. The server decides everything that matters
// (order, what is right); this page only shows a question, times the answer and sends it.
"use strict";

const PROMPTS = {
  single: "Is this photo real or synthetic?",
  pair: "Which photo is the real one?",
  likert: "How realistic is this photo?",
};
const LIKERT = ["1 · clearly artificial", "2", "3", "4", "5 · fully realistic"];
const $ = (id) => document.getElementById(id);

let current = null;  // the question on screen
let shownAt = 0;     // performance.now() when its images had loaded
let choice = null;   // single mode: real|synthetic, waiting for a confidence
let busy = false;
let modes = [];      // the study's sections, in order (from /api/study)

async function api(method, path, body) {
  const res = await fetch(path, {
    method, credentials: "same-origin",
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await res.json().catch(() => ({}));
  return { status: res.status, data };
}

function error(text) {
  $("error").textContent = text || "";
  $("error").hidden = !text;
}

function section(name) {
  for (const id of ["start", "rate", "done"]) $(id).hidden = id !== name;
}

function button(label, value, onClick, cls) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.dataset.value = value;
  if (cls) b.className = cls;
  b.disabled = true;
  b.addEventListener("click", () => onClick(value));
  return b;
}

function setChoices(buttons, label) {
  const box = $("choices");
  box.replaceChildren();
  if (label) {
    const p = document.createElement("div");
    p.className = "label";
    p.textContent = label;
    box.append(p);
  }
  box.append(...buttons);
}

function enable(on) {
  for (const b of $("choices").querySelectorAll("button")) b.disabled = !on;
}

function show(q) {
  current = q;
  choice = null;
  busy = false;
  $("who").textContent = `You are ${q.rater} · resume code ${q.code}`;
  if (q.finished) { section("done"); return; }
  section("rate");
  $("counter").textContent = `Question ${q.done + 1} of ${q.total}`;
  const part = modes.indexOf(q.mode);
  $("part").textContent = modes.length > 1 && part >= 0 ? `Part ${part + 1} of ${modes.length}` : "";
  $("bar").style.width = `${(100 * q.done) / q.total}%`;
  $("prompt").textContent = PROMPTS[q.mode];
  const figures = q.images.map((src, i) => {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.alt = q.images.length > 1 ? (i ? "right photo" : "left photo") : "photo";
    img.src = src;
    fig.append(img);
    if (q.images.length > 1) {
      const cap = document.createElement("figcaption");
      cap.textContent = i ? "Right (→)" : "Left (←)";
      fig.append(cap);
    }
    return fig;
  });
  $("images").replaceChildren(...figures);
  if (q.mode === "single") {
    setChoices([button("Real (R)", "real", pick), button("Synthetic (S)", "synthetic", pick)]);
    $("keys").textContent = "Keys: R = real, S = synthetic, then 1–5 for how sure you are.";
  } else if (q.mode === "pair") {
    setChoices([button("← Left is real", "left", send), button("Right is real →", "right", send)]);
    $("keys").textContent = "Keys: ← or F = left, → or J = right.";
  } else {
    setChoices(LIKERT.map((t, i) => button(t, String(i + 1), send)));
    $("keys").textContent = "Keys: 1 (clearly artificial) to 5 (fully realistic).";
  }
  const imgs = [...$("images").querySelectorAll("img")];
  Promise.all(imgs.map((im) => im.decode().catch(() => null))).then(() => {
    if (current !== q) return;
    shownAt = performance.now();
    enable(true);
  });
}

function pick(value) {  // single mode, first step: real or synthetic; the response time stops here
  if (busy || choice) return;
  choice = { value, rt: Math.round(performance.now() - shownAt) };
  const label = `You said ${value}. How sure are you? (1 = guessing, 5 = certain)`;
  setChoices([1, 2, 3, 4, 5].map((c) => button(String(c), String(c), confident, "secondary")), label);
  enable(true);
}

function confident(c) {
  if (choice) submit(choice.value, Number(c), choice.rt);
}

function send(value) {
  submit(value, null, Math.round(performance.now() - shownAt));
}

async function submit(answer, confidence, rt) {
  if (busy || !current || current.finished) return;
  busy = true;
  enable(false);
  const body = { position: current.position, item: current.item.split("/").pop(), answer, confidence, rt_ms: rt };
  const { status, data } = await api("POST", "/api/answer", body);
  if (status === 200) { error(""); show(data); return; }
  if (status === 409) {  // answered elsewhere (another tab, a retry): continue where the server is
    const next = await api("GET", "/api/next");
    if (next.status === 200) { show(next.data); return; }
  }
  busy = false;
  enable(true);
  error(data.detail ? String(typeof data.detail === "string" ? data.detail : "invalid answer") : `error ${status}`);
}

document.addEventListener("keydown", (e) => {
  if (!current || current.finished || $("rate").hidden || e.target.tagName === "INPUT") return;
  const k = e.key.toLowerCase();
  const mode = current.mode;
  let value = null;
  if (mode === "single" && !choice) value = { r: "real", s: "synthetic" }[k];
  else if (mode === "pair") value = { arrowleft: "left", f: "left", arrowright: "right", j: "right" }[k];
  else if ("12345".includes(k) && k.length === 1) value = k;
  if (!value) return;
  const b = $("choices").querySelector(`button[data-value="${value}"]`);
  if (b && !b.disabled) { e.preventDefault(); b.click(); }
});

async function startSession(body) {
  error("");
  const { status, data } = await api("POST", "/api/session", body);
  if (status === 200) show(data);
  else error(data.detail ? String(data.detail) : `error ${status}`);
}

$("start-form").addEventListener("submit", (e) => {
  e.preventDefault();
  startSession({ access_code: $("access-code").value || null });
});
$("resume-form").addEventListener("submit", (e) => {
  e.preventDefault();
  startSession({ access_code: $("access-code").value || null, resume_code: $("resume-code").value });
});

(async () => {
  const info = await api("GET", "/api/study");
  if (info.status === 200) {
    document.title = `Rating · ${info.data.name}`;
    $("code-row").hidden = !info.data.needs_code;
    modes = info.data.modes;
  }
  const next = await api("GET", "/api/next");  // a session cookie from an earlier visit: continue it
  if (next.status === 200) show(next.data);
  else section("start");
})();
