// Check-in: keep a typed reference selected; scan a QR code with the camera where
// the browser can (a file, not inline: the pages' CSP allows scripts from this site only).
(function () {
  "use strict";
  var form = document.getElementById("checkin-form");
  var input = document.getElementById("f-reference");
  // After an error the typed reference stays selected: the next scan replaces it.
  if (input.value) { input.select(); }
  var button = document.getElementById("scan-camera");
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return;
  }
  window.BarcodeDetector.getSupportedFormats().then(function (formats) {
    button.hidden = formats.indexOf("qr_code") < 0;
  }).catch(function () {});
  button.addEventListener("click", function () {
    var video = document.getElementById("scan-video");
    var failed = document.getElementById("scan-error");
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
      video.srcObject = stream;
      video.hidden = false;
      failed.hidden = true;
      video.play();
      var timer = setInterval(function () {
        detector.detect(video).then(function (codes) {
          if (!codes.length) { return; }
          clearInterval(timer);
          stream.getTracks().forEach(function (track) { track.stop(); });
          video.hidden = true;
          input.value = codes[0].rawValue.trim();
          input.focus();
          if (form.reportValidity()) { form.requestSubmit(); }
        }).catch(function () {});
      }, 250);
    }).catch(function () { failed.hidden = false; });
  });
})();
