// The display board's live updates (a file, not inline: the pages' CSP allows
// scripts from this site only).
// EventSource reconnects by itself (the server sends retry: 2000); every message
// carries the whole state, so a board that was offline is right again at once.
(function () {
  var counterText = document.body.dataset.counterText;
  var statusEl = document.getElementById("status");
  function render(s) {
    var called = document.getElementById("called");
    called.innerHTML = "";
    s.called.forEach(function (c, i) {
      var tr = document.createElement("tr");
      if (i === 0) tr.className = "latest";
      var a = document.createElement("td"); a.textContent = c.label;
      var b = document.createElement("td"); b.className = "counter";
      b.textContent = counterText.replace("{counter}", c.counter || "");
      tr.appendChild(a); tr.appendChild(b); called.appendChild(tr);
    });
    var next = document.getElementById("next");
    next.innerHTML = "";
    s.next.forEach(function (label) {
      var li = document.createElement("li"); li.textContent = label; next.appendChild(li);
    });
    document.getElementById("waiting").textContent = s.waiting;
    document.getElementById("wait").textContent = s.expected_wait_minutes;
  }
  var source = new EventSource(location.pathname + "/stream");
  source.addEventListener("board", function (e) {
    render(JSON.parse(e.data));
    statusEl.dataset.state = "live"; statusEl.textContent = "●";
  });
  source.onerror = function () { statusEl.dataset.state = "reconnecting"; statusEl.textContent = "○"; };
})();
