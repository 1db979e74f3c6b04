/* Dialogs the server renders open (the 「エラー」 dialog, 「中止してよろしいですか」) become modal when
   JavaScript runs: the page behind is inert, Tab stays inside, Esc closes, focus goes to the button
   marked autofocus. Without JavaScript they stay as rendered and close with their own form. */
(function () {
  "use strict";
  function makeModal(root) {
    var dialogs = root.querySelectorAll ? root.querySelectorAll("dialog[open][data-modal]") : [];
    Array.prototype.forEach.call(dialogs, function (dialog) {
      if (typeof dialog.showModal !== "function" || dialog.matches(":modal")) return;
      dialog.close();
      dialog.showModal();
      var first = dialog.querySelector("[autofocus]");
      if (first) first.focus();
    });
  }
  document.addEventListener("DOMContentLoaded", function () { makeModal(document); });
  document.addEventListener("htmx:load", function (event) {
    makeModal(event.target.parentNode || event.target);
  });
})();
