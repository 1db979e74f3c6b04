/* Dialogs the server renders open (the 「エラー」 dialog, 「中止してよろしいですか」) become modal when
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
  document.addEventListener("DOMContentLoaded", function () { makeModal(document); });
  document.addEventListener("htmx:load", function (event) {
    makeModal(event.target.parentNode || event.target);
  });
})();
