// The kosearch search page. Text from documents is only ever placed with textContent (never innerHTML),
// so nothing an indexed file says can become markup or script here.
"use strict";

const $ = (id) => document.getElementById(id);

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) {
    throw new Error((body && body.error) || `HTTP ${response.status}`);
  }
  return body;
}

// The hit's text with the query's morphemes marked. The service gives spans as code-point offsets
// (Python str indices), so the text is split into code points (Array.from), not UTF-16 units.
function highlighted(text, spans, best) {
  const chars = Array.from(text);
  const container = element("p", null, "hit-text");
  const marks = new Array(chars.length).fill(false);
  for (const [start, end] of spans || []) {
    for (let i = Math.max(0, start); i < Math.min(chars.length, end); i++) marks[i] = true;
  }
  const inBest = (i) => best && i >= best[0] && i < best[1];
  let i = 0;
  while (i < chars.length) {
    const mark = marks[i];
    const bestHere = inBest(i);
    let j = i;
    while (j < chars.length && marks[j] === mark && inBest(j) === bestHere) j++;
    const piece = chars.slice(i, j).join("");
    let node = mark ? element("mark", piece) : document.createTextNode(piece);
    if (bestHere) {
      const wrap = element("span", null, "best");
      wrap.appendChild(node);
      node = wrap;
    }
    container.appendChild(node);
    i = j;
  }
  return container;
}

function place(hit) {
  return hit.page !== null && hit.page !== undefined ? `${hit.path} p.${hit.page}` : `${hit.path}:${hit.line}`;
}

function scoreLine(hit) {
  const parts = [`${hit.mode} ${hit.score.toFixed(3)}`];
  if (hit.dense_score !== null && hit.dense_score !== undefined) parts.push(`의미 ${hit.dense_score.toFixed(3)}`);
  if (hit.lexical_score !== null && hit.lexical_score !== undefined) parts.push(`낱말 ${hit.lexical_score.toFixed(2)}`);
  return parts.join(" · ");
}

function filters() {
  const where = [];
  const format = $("format").value;
  if (format) where.push(`format = '${format.replace(/'/g, "''")}'`);
  const path = $("path").value.trim();
  if (path) where.push(`path GLOB '${path.replace(/'/g, "''")}'`);
  for (const row of document.querySelectorAll(".field-filter")) {
    const value = row.querySelector("input").value.trim();
    if (!value) continue;
    const name = row.dataset.field;
    const op = row.querySelector("select").value;
    const numeric = row.dataset.type === "integer" || row.dataset.type === "real";
    const literal = numeric && !Number.isNaN(Number(value)) ? value : `'${value.replace(/'/g, "''")}'`;
    where.push(`${name} ${op} ${literal}`);
  }
  return where;
}

async function showContext(hit, holder, button) {
  button.disabled = true;
  try {
    const unit = await getJSON(`/units/${hit.sentence_id}?context=2`);
    const box = element("div", null, "context");
    for (const text of unit.context_before) box.appendChild(element("p", text));
    box.appendChild(element("p", "⋯ (이 결과) ⋯", "muted"));
    for (const text of unit.context_after) box.appendChild(element("p", text));
    holder.appendChild(box);
    button.remove();
  } catch (error) {
    holder.appendChild(element("p", error.message, "error"));
    button.disabled = false;
  }
}

function renderHits(hits) {
  const list = $("results");
  list.replaceChildren();
  for (const hit of hits) {
    const item = element("li", null, "hit");
    item.appendChild(element("div", place(hit), "where"));
    item.appendChild(highlighted(hit.text, hit.highlights, hit.best_sentence));
    item.appendChild(element("div", scoreLine(hit), "scores"));
    const more = element("button", "앞뒤 문장 보기", "more");
    more.type = "button";
    more.addEventListener("click", () => showContext(hit, item, more));
    item.appendChild(more);
    list.appendChild(item);
  }
}

async function search(event) {
  if (event) event.preventDefault();
  const q = $("query").value.trim();
  if (!q) return;
  const params = new URLSearchParams({ q, k: $("k").value || "10" });
  if ($("mode").value) params.set("mode", $("mode").value);
  if ($("group").checked) params.set("group_by", "document");
  for (const clause of filters()) params.append("where", clause);
  $("status").textContent = "검색 중…";
  $("status").className = "";
  try {
    const started = performance.now();
    const result = await getJSON(`/search?${params}`);
    renderHits(result.hits);
    const ms = Math.round(performance.now() - started);
    $("status").textContent = result.hits.length ? `결과 ${result.hits.length}개 (${ms} ms)` : "찾은 결과가 없습니다.";
    history.replaceState(null, "", `?${params}`);
  } catch (error) {
    $("results").replaceChildren();
    $("status").textContent = error.message;
    $("status").className = "error";
  }
}

async function loadPairs() {
  const list = $("pairs");
  list.replaceChildren(element("li", "불러오는 중…", "muted"));
  try {
    const pairs = await getJSON("/paraphrases?top=20");
    list.replaceChildren();
    for (const pair of pairs) {
      const item = element("li");
      item.appendChild(element("div", `유사도 ${pair.score.toFixed(3)}`, "scores"));
      item.appendChild(element("p", pair.a.text, "hit-text"));
      item.appendChild(element("div", place(pair.a), "where"));
      item.appendChild(element("p", pair.b.text, "hit-text"));
      item.appendChild(element("div", place(pair.b), "where"));
      list.appendChild(item);
    }
    if (!pairs.length) list.appendChild(element("li", "비슷한 문장 쌍이 없습니다.", "muted"));
  } catch (error) {
    list.replaceChildren(element("li", error.message, "error"));
  }
}

async function loadFields() {
  try {
    const [info, fields] = await Promise.all([getJSON("/info"), getJSON("/fields")]);
    $("index-summary").textContent = `문서 ${info.documents.toLocaleString()}개 · 단위 ${info.sentences.toLocaleString()}개 · ${info.model}`;
    const holder = $("field-filters");
    for (const [name, type] of Object.entries(fields.metadata)) {
      const row = element("label", `${name} `, "field-filter");
      row.dataset.field = name;
      row.dataset.type = type;
      const op = document.createElement("select");
      for (const symbol of ["=", "!=", ">=", "<=", ">", "<"]) op.appendChild(element("option", symbol));
      row.appendChild(op);
      const input = document.createElement("input");
      input.type = "text";
      input.size = 8;
      row.appendChild(input);
      holder.appendChild(row);
    }
  } catch (error) {
    $("index-summary").textContent = error.message;
  }
}

function showTab(name) {
  const searching = name === "search";
  $("search-view").hidden = !searching;
  $("pairs-view").hidden = searching;
  $("tab-search").classList.toggle("active", searching);
  $("tab-pairs").classList.toggle("active", !searching);
}

$("search-form").addEventListener("submit", search);
$("tab-search").addEventListener("click", () => showTab("search"));
$("tab-pairs").addEventListener("click", () => showTab("pairs"));
$("load-pairs").addEventListener("click", loadPairs);
loadFields();
const initial = new URLSearchParams(location.search).get("q");
if (initial) { $("query").value = initial; search(); }
