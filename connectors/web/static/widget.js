// Embed the chat on any page:  <script src="https://GATEWAY/chat/widget.js" data-site="default" async></script>
// A button bottom-right opens the chat in an iframe served by the gateway (same origin as its API).
(() => {
  "use strict";
  const me = document.currentScript;
  const base = new URL(me.src).origin;
  const site = me.dataset.site || "default";
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = me.dataset.label || "Chat";
  button.setAttribute("aria-expanded", "false");
  button.style.cssText =
    "position:fixed;right:1rem;bottom:1rem;z-index:2147483647;padding:.8rem 1.2rem;border:0;border-radius:2rem;" +
    "background:#2563eb;color:#fff;font:inherit;box-shadow:0 4px 16px #0004;cursor:pointer";
  const frame = document.createElement("iframe");
  frame.title = "Chat";
  frame.src = `${base}/chat?site=${encodeURIComponent(site)}&embed=1`;
  frame.style.cssText =
    "position:fixed;right:1rem;bottom:4.5rem;z-index:2147483647;width:min(380px,calc(100vw - 2rem));" +
    "height:min(560px,calc(100vh - 6rem));border:1px solid #8884;border-radius:1rem;background:#fff;display:none";
  button.addEventListener("click", () => {
    const open = frame.style.display === "none";
    frame.style.display = open ? "block" : "none";
    button.setAttribute("aria-expanded", String(open));
  });
  document.body.append(frame, button);
})();
