// graphrun's console: a page of the server that talks to its own API, as any client of the
// LangGraph Server API would. No build step and no framework: the browser runs this file as it is.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { threadId: null, forkFrom: null, busy: false };

// ---------------------------------------------------------------- the API

function headers(extra = {}) {
  const key = $("api-key").value.trim();
  return { "content-type": "application/json", ...(key ? { "x-api-key": key } : {}), ...extra };
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(`${method} ${path}: ${response.status} ${detail}`);
  }
  const answer = await response.text(); // a cancel is 202 with no body
  return answer ? JSON.parse(answer) : null;
}

// Server-sent events read from a fetch body (EventSource cannot POST or send headers).
async function* sse(path, body) {
  const response = await fetch(path, { method: "POST", headers: headers(), body: JSON.stringify(body) });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(`POST ${path}: ${response.status} ${detail}`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

function showError(error) {
  $("error").textContent = error ? String(error.message || error) : "";
}

async function guarded(fn) {
  try { showError(null); await fn(); } catch (error) { showError(error); }
}

// ---------------------------------------------------------------- rendering

function text(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((part) => (typeof part === "string" ? part : part.text || "")).join("");
  return "";
}

function renderMessages(messages) {
  const box = $("messages");
  box.replaceChildren();
  for (const m of messages || []) {
    const kind = m.type === "human" ? "human" : m.type === "tool" ? "tool" : "ai";
    const div = document.createElement("div");
    div.className = `message ${kind}`;
    div.dataset.id = m.id || "";
    div.textContent = text(m.content);
    for (const call of m.tool_calls || []) {
      const line = document.createElement("div");
      line.className = "tool-call";
      line.textContent = `→ ${call.name}(${JSON.stringify(call.args)})`;
      div.appendChild(line);
    }
    box.appendChild(div);
  }
  box.scrollTop = box.scrollHeight;
}

function liveBubble(id) {
  let div = [...$("messages").children].find((d) => d.dataset.id === id);
  if (!div) {
    div = document.createElement("div");
    div.className = "message ai streaming";
    div.dataset.id = id;
    $("messages").appendChild(div);
  }
  return div;
}

// The choices an interrupt's response_schema offers: the values of its `decision` discriminator.
function decisions(schema) {
  const found = [];
  const visit = (node) => {
    if (!node || typeof node !== "object") return;
    const decision = node.properties && node.properties.decision;
    if (decision) {
      if (decision.const) found.push(decision.const);
      for (const v of decision.enum || []) found.push(v);
    }
    for (const key of ["oneOf", "anyOf"]) for (const sub of node[key] || []) visit(sub.$ref ? resolve(schema, sub.$ref) : sub);
    if (node.$ref) visit(resolve(schema, node.$ref));
  };
  visit(schema);
  return [...new Set(found)];
}

function resolve(root, ref) {
  return ref.replace(/^#\//, "").split("/").reduce((node, part) => (node || {})[part], root);
}

function renderInterrupts(interrupts) {
  const box = $("interrupts");
  box.replaceChildren();
  for (const intr of interrupts) {
    const card = document.createElement("div");
    card.className = "card";
    card.dataset.interruptId = intr.id || "";
    // Several interrupts at once are answered each by its id.
    const answer = (resume) => guarded(() => run({ command: { resume: interrupts.length > 1 ? { [intr.id]: resume } : resume } }));
    if (isHumanInTheLoop(intr.value)) humanInTheLoopCard(card, intr.value, answer);
    else schemaCard(card, intr, answer);
    box.appendChild(card);
  }
}

function button(parent, label, decision, fn) {
  const b = document.createElement("button");
  b.textContent = label;
  b.dataset.decision = decision;
  b.onclick = fn;
  parent.appendChild(b);
  return b;
}

function argsEditor(parent, value) {
  const editor = document.createElement("textarea");
  editor.rows = 5;
  editor.className = "args";
  editor.value = JSON.stringify(value, null, 2);
  parent.appendChild(editor);
  return editor;
}

function reasonInput(parent) {
  const reason = document.createElement("input");
  reason.placeholder = "reason (for a rejection)";
  reason.className = "reason";
  parent.appendChild(reason);
  return reason;
}

// LangChain's HumanInTheLoopMiddleware: {action_requests: [{name, args, description}], review_configs:
// [{action_name, allowed_decisions}]}, answered with {decisions: [one per action request, in order]}.
function isHumanInTheLoop(value) {
  return !!value && Array.isArray(value.action_requests) && Array.isArray(value.review_configs);
}

function humanInTheLoopCard(card, value, answer) {
  const requests = value.action_requests;
  const chosen = new Array(requests.length);
  const decide = (i, decision, block) => {
    chosen[i] = decision;
    block.dataset.decided = decision.type;
    if (chosen.every(Boolean)) answer({ decisions: chosen });
  };
  requests.forEach((action, i) => {
    const block = document.createElement("div");
    block.className = "action";
    block.dataset.action = action.name;
    const config = value.review_configs.find((c) => c.action_name === action.name) || {};
    const allowed = config.allowed_decisions || ["approve", "edit", "reject"];
    const question = document.createElement("p");
    question.textContent = action.description || `Run ${action.name}?`;
    block.appendChild(question);
    const editor = argsEditor(block, action.args || {});
    const reason = allowed.includes("reject") ? reasonInput(block) : null;
    if (allowed.includes("approve")) button(block, "Approve", "approve", () => decide(i, { type: "approve" }, block));
    if (allowed.includes("edit")) {
      button(block, "Edit", "edit", () =>
        decide(i, { type: "edit", edited_action: { name: action.name, args: JSON.parse(editor.value) } }, block));
    }
    if (allowed.includes("reject")) {
      button(block, "Reject", "reject", () => {
        const message = reason.value.trim();
        decide(i, message ? { type: "reject", message } : { type: "reject" }, block);
      });
    }
    card.appendChild(block);
  });
}

// Any other interrupt: its value as JSON, with the choices its response_schema offers.
function schemaCard(card, intr, answer) {
  const value = intr.value || {};
  const question = document.createElement("p");
  question.textContent = value.question || "The run is waiting for an answer.";
  card.appendChild(question);
  const editor = argsEditor(card, value.args !== undefined ? value.args : value);
  const choices = decisions(intr.response_schema);
  const reason = choices.includes("reject") ? reasonInput(card) : null;
  if (!choices.length) {
    button(card, "Resume", "resume", () => answer(JSON.parse(editor.value)));
    return;
  }
  if (choices.includes("approve")) button(card, "Approve", "approve", () => answer({ decision: "approve" }));
  if (choices.includes("edit")) button(card, "Edit", "edit", () => answer({ decision: "edit", args: JSON.parse(editor.value) }));
  if (choices.includes("reject")) button(card, "Reject", "reject", () => answer({ decision: "reject", reason: reason.value }));
}

// ---------------------------------------------------------------- threads, history, runs

async function loadAssistants() {
  const assistants = await api("POST", "/assistants/search", { limit: 100 });
  const select = $("assistant");
  select.replaceChildren();
  for (const a of assistants) {
    const option = document.createElement("option");
    option.value = a.assistant_id;
    option.textContent = a.name === a.graph_id ? a.name : `${a.name} (${a.graph_id})`;
    select.appendChild(option);
  }
}

// Ids are time-ordered, so their first characters are alike: lists show the time to the second and the
// first message instead, and the full id on hover.
function when(iso) {
  return new Date(iso).toLocaleString([], {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

function firstMessage(values) {
  const messages = (values && values.messages) || [];
  const first = messages.find((m) => m.type === "human") || messages[0];
  return first ? text(first.content).trim() : "";
}

async function loadThreads() {
  const query = $("thread-search").value.trim();
  const body = { limit: 50 };
  if (/^[0-9a-f-]{36}$/i.test(query)) body.ids = [query];
  else if (query.includes("=")) {
    const [key, ...rest] = query.split("=");
    body.metadata = { [key.trim()]: rest.join("=").trim() };
  }
  const threads = await api("POST", "/threads/search", body);
  const list = $("threads");
  list.replaceChildren();
  for (const t of threads) {
    const li = document.createElement("li");
    li.dataset.threadId = t.thread_id;
    li.title = t.thread_id;
    const first = document.createElement("span");
    first.className = "first-message";
    first.textContent = firstMessage(t.values) || "(no messages yet)";
    const meta = document.createElement("span");
    meta.className = "muted";
    meta.textContent = `${t.status} · ${when(t.created_at)}`;
    li.append(first, meta);
    if (t.thread_id === state.threadId) li.className = "current";
    li.onclick = () => guarded(() => openThread(t.thread_id));
    list.appendChild(li);
  }
}

async function openThread(threadId) {
  state.threadId = threadId;
  state.forkFrom = null;
  $("fork-banner").hidden = true;
  $("thread-title").textContent = `Thread ${threadId}`;
  await refreshThread();
  await loadThreads();
}

async function refreshThread() {
  if (!state.threadId) return;
  const current = await api("GET", `/threads/${state.threadId}/state`);
  renderMessages((current.values || {}).messages);
  renderInterrupts(current.interrupts || []);
  const history = await api("POST", `/threads/${state.threadId}/history`, { limit: 20 });
  const list = $("history");
  list.replaceChildren();
  for (const snapshot of history) {
    const li = document.createElement("li");
    const count = ((snapshot.values || {}).messages || []).length;
    li.dataset.checkpointId = snapshot.checkpoint.checkpoint_id;
    li.textContent = `step ${snapshot.metadata && snapshot.metadata.step} · ${count} messages${snapshot.next.length ? " · next " + snapshot.next.join(",") : ""} `;
    const fork = document.createElement("button");
    fork.textContent = "fork";
    fork.className = "fork";
    fork.onclick = () => {
      state.forkFrom = snapshot.checkpoint;
      $("fork-banner").hidden = false;
      $("fork-banner").textContent = `The next message forks from step ${snapshot.metadata && snapshot.metadata.step} (${count} messages).`;
      renderMessages((snapshot.values || {}).messages);
    };
    li.appendChild(fork);
    list.appendChild(li);
  }
  const runs = await api("GET", `/threads/${state.threadId}/runs?limit=20`);
  const body = $("runs").querySelector("tbody");
  body.replaceChildren();
  for (const r of runs) {
    const tr = document.createElement("tr");
    tr.dataset.runId = r.run_id;
    tr.title = r.run_id;
    tr.innerHTML = `<td class="created"></td><td class="status">${r.status}</td><td></td>`;
    tr.querySelector(".created").textContent = when(r.created_at);
    if (r.status === "pending" || r.status === "running") {
      const cancel = document.createElement("button");
      cancel.textContent = "cancel";
      cancel.onclick = () => guarded(async () => {
        await api("POST", `/threads/${state.threadId}/runs/${r.run_id}/cancel`);
        await refreshThread();
      });
      tr.lastChild.appendChild(cancel);
    }
    body.appendChild(tr);
  }
}

// ---------------------------------------------------------------- a run, streamed

async function run(extra) {
  if (state.busy) return;
  state.busy = true;
  $("send").disabled = true;
  try {
    if (!state.threadId) {
      const thread = await api("POST", "/threads", {});
      await openThread(thread.thread_id);
    }
    const body = { assistant_id: $("assistant").value, stream_mode: ["messages-tuple", "values"], ...extra };
    if (state.forkFrom) body.checkpoint = state.forkFrom;
    state.forkFrom = null;
    $("fork-banner").hidden = true;
    $("interrupts").replaceChildren();
    for await (const { event, data } of sse(`/threads/${state.threadId}/runs/stream`, body)) {
      if (event === "messages") {
        const [chunk] = data;
        if (chunk && (chunk.type === "AIMessageChunk" || chunk.type === "ai")) {
          liveBubble(chunk.id || "live").textContent += text(chunk.content);
        }
      } else if (event === "values") {
        renderMessages(data.messages);
      } else if (event === "error") {
        throw new Error(`the run failed: ${data.error || ""} ${data.message || ""}`);
      }
    }
  } finally {
    state.busy = false;
    $("send").disabled = false;
    await refreshThread();
    await loadThreads();
    await loadMetrics();
  }
}

// ---------------------------------------------------------------- metrics

async function loadMetrics() {
  const response = await fetch("/metrics", { headers: headers() });
  if (!response.ok) { $("metrics").textContent = ""; return; }
  const byStatus = {};
  let sum = 0, count = 0;
  for (const line of (await response.text()).split("\n")) {
    let m = line.match(/^graphrun_runs_total\{[^}]*status="([^"]+)"[^}]*\} ([0-9.e+]+)/);
    if (m) byStatus[m[1]] = (byStatus[m[1]] || 0) + Number(m[2]);
    m = line.match(/^graphrun_run_duration_seconds_sum\{[^}]*\} ([0-9.e+]+)/);
    if (m) sum += Number(m[1]);
    m = line.match(/^graphrun_run_duration_seconds_count\{[^}]*\} ([0-9.e+]+)/);
    if (m) count += Number(m[1]);
  }
  if (!Object.keys(byStatus).length) { await loadStats(); return; }
  const { runs, errors } = runSummary(byStatus);
  $("metrics").textContent = `runs: ${runs} · errors: ${errors} · mean run ${count ? (sum / count).toFixed(2) : "–"} s`;
}

function runSummary(byStatus) {
  return {
    runs: Object.entries(byStatus).map(([s, n]) => `${s} ${n}`).join(", ") || "none yet",
    errors: (byStatus.error || 0) + (byStatus.timeout || 0),
  };
}

// An API process that runs no graphs (graphrun api beside graphrun worker) counts no runs in its
// /metrics: the summary then comes from /stats, which the control store adds up for every process.
async function loadStats() {
  const response = await fetch("/stats?hours=24", { headers: headers() });
  if (!response.ok) { $("metrics").textContent = "runs: none yet"; return; }
  const stats = await response.json();
  const { runs, errors } = runSummary(stats.runs_by_status || {});
  const p50 = stats.latency_s && stats.latency_s.p50 != null ? stats.latency_s.p50.toFixed(2) : "–";
  $("metrics").textContent = `runs (24 h): ${runs} · errors: ${errors} · median run ${p50} s`;
}

// ---------------------------------------------------------------- wiring

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const content = $("input").value.trim();
  if (!content) return;
  $("input").value = "";
  const human = document.createElement("div");
  human.className = "message human";
  human.textContent = content;
  $("messages").appendChild(human);
  guarded(() => run({ input: { messages: [{ role: "user", content }] } }));
});
$("new-thread").onclick = () => guarded(async () => {
  const thread = await api("POST", "/threads", {});
  await openThread(thread.thread_id);
});
$("thread-search").addEventListener("input", () => guarded(loadThreads));
$("api-key").value = localStorage.getItem("graphrun-api-key") || "";
$("api-key").addEventListener("change", () => {
  localStorage.setItem("graphrun-api-key", $("api-key").value.trim());
  guarded(start);
});

async function start() {
  await loadAssistants();
  await loadThreads();
  await loadMetrics();
}
guarded(start);
