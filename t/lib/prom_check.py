"""Checks a learn_status?format=prometheus page for t/071-prometheus.t.

    /usr/bin/python3 t/lib/prom_check.py EXPECT PAGE_FILE

Parses PAGE with Debian's python3-prometheus-client and prints one line
per check, "ok - WHAT" or "not ok - WHAT: WHY", for the suite to turn
into TAP.  EXPECT: {"predicts": {model: n}, "trains": {model: n},
"upstreams": [name, ...],
"loss": {model: "NaN" or "+Inf"}, "checkpointed": [model, ...]}.

prometheus_client's text parser is lax (its own docstring says so): it
accepts samples without # TYPE as "untyped" families of one sample, and
a family that comes back later as a second family of the same name.  So
besides parsing, the checks below read the raw lines: every family in
one block, one # HELP and one # TYPE before its samples.
"""

import json
import math
import re
import sys

from prometheus_client.parser import text_string_to_metric_families


SUFFIXES = {
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count", ""),
}

results = []


def check(ok, what, why=""):
    results.append((bool(ok), what, why))
    return ok


def family_of(sample, types):
    """The family a sample line belongs to, by the # TYPE lines seen."""
    for fam, typ in types.items():
        for suffix in SUFFIXES.get(typ, ("",)):
            if sample == fam + suffix:
                return fam
    return sample


def raw_checks(text):
    """One block per family, one HELP and one TYPE each, before samples."""
    types, helps, order, problems = {}, {}, [], []
    sample_re = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")

    for n, line in enumerate(text.split("\n"), 1):
        if line == "":
            continue

        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, fam = line[2:6], line.split(" ")[2]
            seen = helps if kind == "HELP" else types

            if fam in seen:
                problems.append("line %d: a second # %s %s" % (n, kind, fam))

            if kind == "TYPE":
                seen[fam] = line.split(" ")[3]
            else:
                seen[fam] = line[len("# HELP " + fam + " "):]

        elif line.startswith("#"):
            continue

        else:
            m = sample_re.match(line)
            if not m:
                problems.append("line %d: not a sample: %r" % (n, line))
                continue
            fam = family_of(m.group(1), types)

            if fam not in types or fam not in helps:
                problems.append("line %d: %s has no # HELP and # TYPE "
                                "before it" % (n, fam))

        if order and order[-1] == fam:
            continue

        if fam in order:
            problems.append("line %d: family %s again, after %s"
                            % (n, fam, order[-1]))
        order.append(fam)

    return types, helps, problems


def main():
    expect = json.loads(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        text = f.read()

    check(text.endswith("\n"), "the page ends with a newline")

    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError and others
        check(False, "prometheus_client parses the page", repr(e))
        return

    check(True, "prometheus_client parses the page")

    names = [f.name for f in families]
    dup = sorted(set(n for n in names if names.count(n) > 1))
    check(not dup, "the parser sees each family once",
          "more than once: " + ", ".join(dup))

    untyped = [f.name for f in families if f.type in ("untyped", "unknown")]
    check(not untyped, "every family has a # TYPE",
          "untyped: " + ", ".join(untyped[:8]))

    nohelp = [f.name for f in families if not f.documentation]
    check(not nohelp, "every family has a # HELP",
          "no help: " + ", ".join(nohelp[:8]))

    types, helps, problems = raw_checks(text)
    check(not problems, "raw lines: one block, one # HELP and one # TYPE "
          "per family", "; ".join(problems[:8]))

    bad = [f for f, t in types.items()
           if (t == "counter") != f.endswith("_total")]
    check(not bad, "counters, and only they, end in _total",
          ", ".join(bad))

    for f in ("learn_model_step", "learn_model_params", "learn_model_loss"):
        check(types.get(f) == "gauge", "%s is a gauge" % f,
              "TYPE %s" % types.get(f))

    byname = dict((f.name, f) for f in families)

    for kind in ("predict", "train"):
        fam = "learn_model_%s_duration_seconds" % kind
        f = byname.get(fam)

        if not check(f is not None and f.type == "histogram",
                     "%s is a histogram" % fam):
            continue

        for model, n in sorted(expect[kind + "s"].items()):
            histogram_checks(f, model, n)

        models = set(s.labels.get("model") for s in f.samples)
        check(models == set(expect[kind + "s"]),
              "%s: a series per model" % fam, "models %r" % sorted(models))

    for kind in ("predict", "train"):
        f = byname.get("learn_model_%s_requests" % kind)
        for model, n in sorted(expect[kind + "s"].items()):
            v = [s.value for s in (f.samples if f else [])
                 if s.labels.get("model") == model]
            check(v == [n], "learn_model_%s_requests_total{model=%s} is %d"
                  % (kind, model, n), "got %r" % v)

    f = byname.get("learn_upstream_picks")
    ups = set(s.labels.get("upstream") for s in (f.samples if f else []))
    check(ups == set(expect["upstreams"]),
          "learn_upstream_picks_total: every upstream, its name unescaped",
          "got %r" % sorted(ups))

    for fam in ("learn_model_checkpoint_step",
                "learn_model_checkpoint_writes"):
        f = byname.get(fam)
        models = set(s.labels.get("model") for s in (f.samples if f else []))
        check(models == set(expect["checkpointed"]),
              "%s: the models with a checkpoint" % fam,
              "got %r" % sorted(models))

    f = byname.get("learn_model_loss")
    for model, want in sorted(expect["loss"].items()):
        v = [s.value for s in (f.samples if f else [])
             if s.labels.get("model") == model]
        check(len(v) == 1 and (math.isnan(v[0]) if want == "NaN"
                               else v[0] == float(want)),
              "learn_model_loss{model=%s} is %s" % (model, want),
              "got %r" % v)


def histogram_checks(f, model, n):
    fam = f.name
    buckets = [s for s in f.samples
               if s.name == fam + "_bucket" and s.labels.get("model") == model]
    count = [s.value for s in f.samples
             if s.name == fam + "_count" and s.labels.get("model") == model]
    total = [s.value for s in f.samples
             if s.name == fam + "_sum" and s.labels.get("model") == model]

    les = [s.labels.get("le") for s in buckets]
    bounds = [float(le) for le in les]
    values = [s.value for s in buckets]

    check(len(buckets) >= 10 and les[-1] == "+Inf"
          and bounds == sorted(bounds) and len(set(bounds)) == len(bounds),
          "%s{model=%s}: buckets in order, +Inf last" % (fam, model),
          "le %r" % les)
    check(values == sorted(values),
          "%s{model=%s}: buckets cumulative" % (fam, model),
          "values %r" % values)
    check(count == [n] and values and values[-1] == n,
          "%s{model=%s}: _count and +Inf are %d" % (fam, model, n),
          "count %r, +Inf %r" % (count, values[-1:]))
    check(len(total) == 1 and total[0] >= 0 and (n > 0 or total[0] == 0)
          and total[0] < 60,
          "%s{model=%s}: _sum in seconds" % (fam, model), "sum %r" % total)
    check(bounds and 0 < bounds[0] <= 0.0001 and 0.1 <= bounds[-2] <= 10,
          "%s{model=%s}: buckets from microseconds to seconds"
          % (fam, model), "le %r" % les)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        check(False, "prom_check.py checked everything", repr(e))
    for ok, what, why in results:
        print("%s - %s%s" % ("ok" if ok else "not ok", what,
                              "" if ok or not why else ": " + why))
