// The odqa page: /info once, then /ask (or /search when no reader is configured).
"use strict";

const form = document.getElementById("ask-form");
const question = document.getElementById("question");
const retriever = document.getElementById("retriever");
const where = document.getElementById("where");
const status = document.getElementById("status");
let hasReader = false;
let topK = 3;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function say(message, isError) {
  status.textContent = message;
  status.className = isError ? "error" : "";
}

// The passage with text[start:end] in <mark>; offsets count code points, as Python's do.
function passage(text, start, end) {
  const node = element("p", "passage");
  const chars = Array.from(text);
  if (start === null || end === null || start >= end) {
    node.textContent = text;
    return node;
  }
  node.append(chars.slice(0, start).join(""));
  node.append(element("mark", "", chars.slice(start, end).join("")));
  node.append(chars.slice(end).join(""));
  return node;
}

// A <meter> from 0 (or the lowest score, when some are negative, as fused z-scores can be)
// to the highest score of the list: each hit's score as a bar, no inline style needed.
function scoreBar(score, low, high) {
  const bar = element("meter", "score-bar");
  bar.min = low;
  bar.max = high > low ? high : low + 1;
  bar.value = high > low ? score : bar.max;
  bar.title = `score ${score.toFixed(3)}`;
  return bar;
}

function source(hit, cited, low, high) {
  const item = element("li", cited ? "source cited" : "source");
  const title = hit.title ? ` — ${hit.title}` : "";
  const head = element("div");
  head.append(element("span", "doc-id", hit.doc_id), title);
  if (cited) head.append(element("span", "badge", "cited"));
  const meta = element("div", "meta");
  if (hit.score !== null) {
    meta.append(scoreBar(hit.score, low, high), element("span", "", `score ${hit.score.toFixed(3)}`));
  }
  item.append(head, meta);
  item.append(passage(hit.text, null, null));
  return item;
}

function showSources(hits, retrieverName, cited) {
  const list = document.getElementById("sources");
  const scores = hits.map((hit) => hit.score).filter((score) => score !== null);
  const low = Math.min(0, ...scores);
  const high = Math.max(0, ...scores);
  list.replaceChildren(
    ...hits.map((hit) => source(hit, cited.has(hit.passage_id), low, high)),
  );
  document.getElementById("sources-heading").textContent =
    `Sources (${hits.length}, retriever ${retrieverName})`;
  document.getElementById("results").hidden = false;
}

function showAnswer(data) {
  const none = data.kind === "none";
  document.getElementById("answer-text").textContent = none ? "No answer found." : data.answer;
  const score = data.score === null ? "" : `, score ${data.score.toFixed(3)}`;
  document.getElementById("answer-meta").textContent = `${data.kind}${score}`;
  const evidence = document.getElementById("evidence");
  evidence.replaceChildren(
    ...data.evidence.map((item) => {
      const block = element("div", "evidence");
      const label = item.citation === null ? "" : `[${item.citation}] `;
      block.append(element("div", "doc-id", `${label}${item.doc_id}`));
      block.append(passage(item.text, item.start, item.end));
      return block;
    }),
  );
  document.getElementById("answer").hidden = false;
  const cited = new Set(data.evidence.map((item) => item.passage_id));
  showSources(data.passages, data.retriever, cited);
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (response.ok) return JSON.parse(text);
  let detail = `${response.status} ${response.statusText}`;
  try {
    detail = JSON.parse(text).detail || detail;
  } catch {
    // not JSON: keep the status line
  }
  throw new Error(detail);
}

// The metadata filter typed in (a JSON object), or null when the field is empty.
function filter() {
  const text = where.value.trim();
  if (!text) return null;
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('the filter is not JSON; write e.g. {"year": 2020, "source": ["pubmed"]}');
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error('the filter must be a JSON object, e.g. {"year": {"gte": 2018}}');
  }
  return value;
}

async function run() {
  const text = question.value.trim();
  if (!text) return;
  say("searching…", false);
  try {
    const chosen = { retriever: retriever.value, where: filter() };
    if (hasReader) {
      showAnswer(await post("/ask", { question: text, top_k: topK, ...chosen }));
    } else {
      const data = await post("/search", { query: text, k: 10, ...chosen });
      showSources(data.hits, data.retriever, new Set());
    }
    say("", false);
  } catch (error) {
    say(error.message, true);
  }
}

async function start() {
  const info = await (await fetch("/info")).json();
  hasReader = info.reader !== null;
  topK = info.top_k;
  retriever.replaceChildren(...info.index.retrievers.map((name) => new Option(name, name)));
  retriever.value = info.index.default_retriever;
  document.getElementById("index-info").textContent =
    `${info.index.documents} documents · ${hasReader ? "reader " + info.reader : "search only"}`;
  const submit = document.getElementById("submit");
  submit.textContent = hasReader ? "Ask" : "Search";
  submit.disabled = false;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  run();
});
retriever.addEventListener("change", run);
start().catch((error) => say(`could not read /info: ${error.message}`, true));
