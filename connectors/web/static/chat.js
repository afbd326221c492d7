// The web chat page: a visitor token from /chat/session, replies over server-sent events (EventSource
// reconnects by itself and sends Last-Event-ID, so nothing is missed), messages in with POST. Every
// entry has an id; the page shows each id once (delivery is at-least-once).
(() => {
  "use strict";
  const params = new URLSearchParams(location.search);
  const site = params.get("site") || "default";
  const tokenKey = `chat-gateway-token:${site}`;
  const log = document.getElementById("log");
  const form = document.getElementById("form");
  const input = document.getElementById("text");
  const status = document.getElementById("status");
  const typing = document.getElementById("typing");
  const shown = new Map();
  let token = null;
  let key = null;
  let source = null;
  let typingTimer = null;

  const newId = () =>
    (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).replace(/[^A-Za-z0-9]/g, "").slice(0, 32);

  function setTyping(on) {
    clearTimeout(typingTimer);
    typing.textContent = on ? "typing…" : "";
    if (on) typingTimer = setTimeout(() => setTyping(false), 15000);
  }

  function show(item) {
    const known = shown.get(item.id);
    if (known) { known.classList.remove("failed"); return; }
    const li = document.createElement("li");
    li.className = item.role === "user" ? "user" : "agent";
    li.dataset.id = item.id;
    li.textContent = item.text;
    shown.set(item.id, li);
    log.appendChild(li);
    li.scrollIntoView({ block: "end" });
    if (item.role !== "user") setTyping(false);
  }

  async function session() {
    const r = await fetch("/chat/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ site, token: localStorage.getItem(tokenKey) }),
    });
    if (!r.ok) throw new Error(`session: ${r.status}`);
    const s = await r.json();
    localStorage.setItem(tokenKey, s.token);
    token = s.token;
    key = s.key;
  }

  function connect() {
    if (source) source.close();
    const url = `/v1/conversations/${encodeURIComponent(key)}/events?token=${encodeURIComponent(token)}`;
    source = new EventSource(url);
    source.addEventListener("message", (e) => show(JSON.parse(e.data)));
    source.addEventListener("typing", () => setTyping(true));
    source.onopen = () => { status.textContent = "connected"; };
    source.onerror = () => {
      status.textContent = "reconnecting…";
      if (source.readyState === EventSource.CLOSED) setTimeout(start, 2000); // refused: new session
    };
  }

  async function post(id, text) {
    for (let attempt = 0; attempt < 6; attempt++) {
      let r;
      try {
        r = await fetch(`/v1/conversations/${encodeURIComponent(key)}/messages`, {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
          body: JSON.stringify({ id, text }),
        });
      } catch { r = null; }
      if (r && r.ok) return true;
      if (r && r.status < 500 && r.status !== 429) return false;
      const wait = Number(r && r.headers.get("Retry-After")) || 2 ** attempt;
      await new Promise((done) => setTimeout(done, wait * 1000));
    }
    return false;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || !key) return;
    input.value = "";
    const id = newId();
    show({ id, role: "user", text });
    setTyping(true);
    if (!(await post(id, text))) {
      shown.get(id).classList.add("failed");
      shown.get(id).title = "not sent";
      setTyping(false);
    }
  });

  async function start() {
    try {
      await session();
      connect();
    } catch (err) {
      status.textContent = "offline, retrying…";
      setTimeout(start, 3000);
    }
  }
  start();
})();
