/* The claims ledger as a reader's tool: filter by verdict, chapter and note, sort by effect.
 *
 * Jupyter Book loads this file on every page; it acts only on the page whose section is
 * "Claims ledger" (appendix/claims.html, and the same section in the single-page build). It
 * reads claims.json at the root of the book and enhances the generated table in place: each
 * row is matched to its record by the claim-check anchor its "evidence" link points to. The
 * table itself is plain HTML, so without JavaScript (or without claims.json) it reads as
 * generated. Filters and sort are kept in the address (?verdict=…&chapter=…&note=…&sort=…),
 * so a filtered view can be linked. No framework.
 */
(function () {
  "use strict";

  // Verdicts in the order of the ledger's text; any other verdict in the data follows them.
  var VERDICTS = ["holds", "holds with a qualification", "inconclusive at this scale",
    "does not reproduce here"];
  var SORTS = {
    "": "reading order",
    "effect-desc": "effect, largest first",
    "effect-asc": "effect, smallest first",
  };
  var PAPER = "paper";  // claims from the papers the chapters cite (note column —)

  function number(value) {
    // Effects are numbers, or strings as printed ("+0.0123", "−0.5"); anything else is null.
    if (typeof value === "number") return isFinite(value) ? value : null;
    if (typeof value !== "string") return null;
    var x = parseFloat(value.replace(/\u2212/g, "-").replace(/^\+/, ""));
    return isFinite(x) ? x : null;
  }

  function notesOf(record) {
    var found = String(record.note || "").match(/\d{3}/g);
    return found && found.length ? found : [PAPER];
  }

  function fragment(href) {
    var i = (href || "").indexOf("#");
    return i < 0 ? "" : href.slice(i + 1);
  }

  function findTable() {
    var section = document.getElementById("claims-ledger");
    if (!section) return null;
    var tables = section.querySelectorAll("table");
    for (var i = 0; i < tables.length; i++) {
      var head = tables[i].tHead ? tables[i].tHead.textContent.toLowerCase() : "";
      if (head.indexOf("verdict") >= 0 && head.indexOf("claim") >= 0) return tables[i];
    }
    return null;
  }

  function headerIndex(table, prefix) {
    var cells = table.tHead.rows[0].cells;
    for (var i = 0; i < cells.length; i++) {
      if (cells[i].textContent.trim().toLowerCase().indexOf(prefix) === 0) return i;
    }
    return -1;
  }

  function option(select, value, label) {
    var o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    select.appendChild(o);
  }

  function control(container, name, label) {
    var wrap = document.createElement("label");
    wrap.appendChild(document.createTextNode(label));
    var select = document.createElement("select");
    select.name = name;
    wrap.appendChild(select);
    container.appendChild(wrap);
    return select;
  }

  function counted(values) {
    var counts = {};
    values.forEach(function (v) { counts[v] = (counts[v] || 0) + 1; });
    return counts;
  }

  function formatEffect(record) {
    var effect = number(record.effect);
    if (effect === null) return "";
    var text = String(record.effect);
    if (number(record.low) !== null && number(record.high) !== null) {
      text += " [" + record.low + ", " + record.high + "]";
    }
    return text;
  }

  function enhance(table, records) {
    var byAnchor = {};
    records.forEach(function (r) { byAnchor[fragment(r.anchor)] = r; });
    var body = table.tBodies[0];
    var rows = [];
    Array.prototype.forEach.call(body.rows, function (tr, i) {
      var link = tr.querySelector('a[href*="#claim-"]');
      var record = link ? byAnchor[fragment(link.getAttribute("href"))] : undefined;
      if (record) rows.push({ tr: tr, record: record, order: i, effect: number(record.effect) });
    });
    if (!rows.length) return;
    table.classList.add("dl-ledger");

    var verdictColumn = headerIndex(table, "verdict");
    var effectColumn = headerIndex(table, "effect");
    var evidenceColumn = headerIndex(table, "evidence");
    if (effectColumn < 0 && evidenceColumn >= 0 &&
        !rows[0].tr.cells[evidenceColumn].querySelector('a[href*="#claim-"]')) {
      // The generated "evidence" column holds the effect and its interval (the link to the
      // claim check has a column of its own).
      effectColumn = evidenceColumn;
    }
    var withEffect = rows.some(function (row) { return row.effect !== null; });
    if (effectColumn < 0 && withEffect) {
      // The generated table has no effect column yet: show the effect beside the verdict.
      var th = document.createElement("th");
      th.textContent = "effect [95% CI]";
      th.className = "dl-effect";
      table.tHead.rows[0].appendChild(th);
      rows.forEach(function (row) {
        var td = row.tr.insertCell(-1);
        td.textContent = formatEffect(row.record);
      });
      effectColumn = table.tHead.rows[0].cells.length - 1;
    }
    rows.forEach(function (row) {
      row.tr.setAttribute("data-verdict", row.record.verdict);
      row.tr.setAttribute("data-chapter", String(row.record.chapter));
      row.tr.setAttribute("data-notes", notesOf(row.record).join(" "));
      row.tr.setAttribute("data-effect", row.effect === null ? "" : String(row.effect));
      if (verdictColumn >= 0) row.tr.cells[verdictColumn].classList.add("dl-verdict");
      if (effectColumn >= 0) row.tr.cells[effectColumn].classList.add("dl-effect");
    });

    var form = document.createElement("form");
    form.className = "dl-ledger-controls";
    form.setAttribute("role", "search");
    form.setAttribute("aria-label", "Filter and sort the claims");
    form.addEventListener("submit", function (e) { e.preventDefault(); });

    var verdicts = counted(rows.map(function (r) { return r.record.verdict; }));
    var verdict = control(form, "verdict", "Verdict");
    option(verdict, "", "all verdicts");
    VERDICTS.concat(Object.keys(verdicts).filter(function (v) {
      return VERDICTS.indexOf(v) < 0;
    }).sort()).forEach(function (v) {
      if (verdicts[v]) option(verdict, v, v + " (" + verdicts[v] + ")");
    });

    var chapters = counted(rows.map(function (r) { return String(r.record.chapter); }));
    var chapter = control(form, "chapter", "Chapter");
    option(chapter, "", "all chapters");
    Object.keys(chapters).sort(function (a, b) { return Number(a) - Number(b); })
      .forEach(function (c) { option(chapter, c, "chapter " + c + " (" + chapters[c] + ")"); });

    var notes = counted([].concat.apply([], rows.map(function (r) { return notesOf(r.record); })));
    var note = control(form, "note", "Note");
    option(note, "", "all notes");
    Object.keys(notes).sort().forEach(function (n) {
      option(note, n, (n === PAPER ? "from a paper (—)" : "note " + n) + " (" + notes[n] + ")");
    });

    var sort = control(form, "sort", "Sort");
    Object.keys(SORTS).forEach(function (k) { option(sort, k, SORTS[k]); });
    if (!withEffect) {
      // claims.json carries no effect sizes (only derivations, or an older build).
      for (var i = 1; i < sort.options.length; i++) sort.options[i].disabled = true;
      sort.title = "no claim in claims.json has an effect size";
    }

    var reset = document.createElement("button");
    reset.type = "button";
    reset.textContent = "Show all";
    form.appendChild(reset);

    var status = document.createElement("p");
    status.className = "dl-ledger-status";
    status.setAttribute("aria-live", "polite");

    var anchor = table.closest(".pst-scrollable-table-container") || table;
    anchor.parentNode.insertBefore(form, anchor);
    anchor.parentNode.insertBefore(status, anchor);

    var selects = { verdict: verdict, chapter: chapter, note: note, sort: sort };

    function apply(updateAddress) {
      var v = verdict.value, c = chapter.value, n = note.value, s = sort.value;
      var shown = 0;
      rows.forEach(function (row) {
        var visible = (!v || row.record.verdict === v) &&
          (!c || String(row.record.chapter) === c) &&
          (!n || notesOf(row.record).indexOf(n) >= 0);
        row.tr.hidden = !visible;
        if (visible) shown += 1;
      });
      var sign = s === "effect-asc" ? 1 : -1;
      rows.slice().sort(function (a, b) {
        if (s && (a.effect === null) !== (b.effect === null)) return a.effect === null ? 1 : -1;
        if (s && a.effect !== null && a.effect !== b.effect) {
          return sign * (a.effect - b.effect);
        }
        return a.order - b.order;  // reading order, and ties (and nulls) in reading order
      }).forEach(function (row) { body.appendChild(row.tr); });
      status.textContent = "Showing " + shown + " of " + rows.length + " claims" +
        (s ? ", " + SORTS[s] + " (claims without an effect size last)" : "") + ".";
      if (updateAddress && window.history && history.replaceState) {
        var params = new URLSearchParams(window.location.search);
        Object.keys(selects).forEach(function (k) {
          if (selects[k].value) params.set(k, selects[k].value); else params.delete(k);
        });
        var query = params.toString();
        history.replaceState(null, "", window.location.pathname + (query ? "?" + query : "") +
          window.location.hash);
      }
    }

    var params = new URLSearchParams(window.location.search);
    Object.keys(selects).forEach(function (k) {
      var wanted = params.get(k);
      var select = selects[k];
      for (var i = 0; wanted !== null && i < select.options.length; i++) {
        if (select.options[i].value === wanted && !select.options[i].disabled) {
          select.value = wanted;
        }
      }
      select.addEventListener("change", function () { apply(true); });
    });
    reset.addEventListener("click", function () {
      Object.keys(selects).forEach(function (k) { selects[k].value = ""; });
      apply(true);
    });
    apply(false);
  }

  function start() {
    var table = findTable();
    if (!table || !table.tHead || !table.tBodies.length) return;
    var root = document.documentElement.getAttribute("data-content_root") || "./";
    fetch(root + "claims.json")
      .then(function (response) {
        if (!response.ok) throw new Error("claims.json: HTTP " + response.status);
        return response.json();
      })
      .then(function (records) { enhance(table, records); })
      .catch(function (error) {
        // The table stays as generated; say why in the console, not on the page.
        if (window.console) console.warn("claims ledger: " + error.message);
      });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
