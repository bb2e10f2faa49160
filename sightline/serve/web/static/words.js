/* Text written for the command line, in the web's words (SL.webText), and counted nouns
 * (SL.plural).
 *
 * A plan's notes, a job's messages and errors come from the code every face shares, and they
 * name options as `sightline train` spells them ("--pretrained"). In the browser an option is
 * the Train form's field that sets it: the page carries the server's one mapping, option →
 * field label, as data-option-labels on <main> (serve/web/train_body.py FIELD_LABELS), so
 * "--pretrained" reads “Start from pretrained (ImageNet) weights”, "--no-eval" reads
 * unchecking “Evaluate on the test split”, and an option the form lacks "the <name> option".
 * A command to run on the server, in `backquotes`, is left as it is. */
'use strict';

(function () {
  const SL = window.SL;
  // "--batch-size", "--model NAME" (the metavar goes: the field names what it holds)
  const FLAG = /(^|[^\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?:[ =][A-Z][A-Z_]*(?![\w-]))?/g;
  let labels = null;

  function optionLabels() {
    if (labels === null) {
      try {
        labels = JSON.parse((SL.$('main') && SL.$('main').dataset.optionLabels) || '{}');
      } catch (err) {
        labels = {};
      }
    }
    return labels;
  }

  SL.optionName = function (option) {
    const known = optionLabels();
    if (known[option]) return '“' + known[option] + '”';
    const negated = /^no-(.+)$/.exec(option);
    if (negated && known[negated[1]]) return 'unchecking “' + known[negated[1]] + '”';
    return 'the ' + option + ' option';
  };

  SL.webText = function (text) {
    if (text === null || text === undefined) return '';
    // Odd pieces between backquotes are commands for the server's shell: kept verbatim.
    return String(text).split('`').map((part, i) => (i % 2 ? part
      : part.replace(FLAG, (match, before, option) => before + SL.optionName(option)))).join('`');
  };

  // "1 step", "2 steps", "1,200 images" (plural: the word's plural when not just + s).
  SL.plural = function (n, word, plural) {
    const count = SL.isNum(n) ? SL.int(n) : String(n);
    return count + ' ' + (Number(n) === 1 ? word : plural || word + 's');
  };
})();
