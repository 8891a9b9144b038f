// Milepost web UI: small progressive enhancements (every page works without them).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // The runs table's Compare button: enabled once two runs are ticked.
  const form = document.getElementById("compare-form");
  const button = document.getElementById("compare-button");
  if (form && button) {
    const boxes = form.querySelectorAll("input[name=run]");
    const update = () => {
      const picked = Array.from(boxes).filter((b) => b.checked).length;
      button.disabled = picked < 2;
      button.textContent = picked ? `Compare ${picked} selected runs` : "Compare selected runs";
    };
    boxes.forEach((b) => b.addEventListener("change", update));
    update();
  }
  // "Back" links on error pages (CSP forbids javascript: URLs).
  document.querySelectorAll("a[data-back]").forEach((a) => {
    a.setAttribute("href", document.referrer || "/");
  });
});
