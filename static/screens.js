/* What JavaScript adds to the screens; each works without it.

   Dialogs the server renders open (the 「エラー」 dialog, 「中止してよろしいですか」) become modal when
   JavaScript runs: the page behind is inert, Tab stays inside, Esc closes, focus goes to the button
   marked autofocus. When an error dialog closes, focus goes to the first wrong field; a link to a
   field in it closes the dialog and focuses that field. Without JavaScript the dialogs stay as
   rendered and close with their own form, and the error summary at the top takes focus instead. */
(function () {
  "use strict";
  function firstWrongField(dialog) {
    var screen = dialog.closest("#screen") || document;
    return screen.querySelector("[aria-invalid=true]");
  }
  function makeModal(root) {
    var dialogs = root.querySelectorAll ? root.querySelectorAll("dialog[open][data-modal]") : [];
    Array.prototype.forEach.call(dialogs, function (dialog) {
      if (typeof dialog.showModal !== "function" || dialog.matches(":modal")) return;
      dialog.close();
      dialog.showModal();
      var first = dialog.querySelector("[autofocus]");
      if (first) first.focus();
      dialog.addEventListener("close", function () {
        var target = dialog.dataset.focusAfter ? document.getElementById(dialog.dataset.focusAfter)
                                               : firstWrongField(dialog);
        if (target) target.focus();
      });
      Array.prototype.forEach.call(dialog.querySelectorAll("a[href^='#']"), function (link) {
        link.addEventListener("click", function (event) {
          event.preventDefault();
          dialog.dataset.focusAfter = link.getAttribute("href").slice(1);
          dialog.close();
        });
      });
    });
  }
  /* ④'s countdown: the server renders the deadline as a clock time (「14:05 までにお電話ください」)
     and the seconds left at that moment in a hidden element; here that element shows and counts
     down from when the page arrived (the phone's own clock may be off, so it is not used). The
     status poll brings the expired screen within 2 s of zero. */
  function startCountdowns(root) {
    var counters = root.querySelectorAll ? root.querySelectorAll("[data-seconds-left]") : [];
    Array.prototype.forEach.call(counters, function (counter) {
      if (counter.dataset.running) return;
      counter.dataset.running = "1";
      var total = parseInt(counter.dataset.secondsLeft, 10);
      var template = counter.dataset.template;
      var started = Date.now();
      counter.hidden = false;
      function tick() {
        if (!counter.isConnected) return;
        var left = Math.max(0, total - Math.floor((Date.now() - started) / 1000));
        counter.textContent = template.replace("{seconds}", String(left));
        if (left > 0) window.setTimeout(tick, 250);
      }
      tick();
    });
  }
  function enhance(root) {
    makeModal(root);
    startCountdowns(root);
  }
  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:load", function (event) {
    enhance(event.target.parentNode || event.target);
  });
})();
