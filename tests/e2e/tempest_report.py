#!/usr/bin/python3
"""Side-by-side summary of Tempest runs (subunit v2 streams, one per compute driver).

    tempest_report.py berth=berth.subunit fake=fake.subunit [--known known.txt]

Prints passed / failed / skipped per run, then every test whose outcome is not the same in
all runs, then the failures of each run with the first line of their reason. --known names
a file of `regex  reason` lines: failures matching one are listed with that reason (they are
not Berth's, e.g. a feature this single-machine cloud does not have); `label:regex` applies to
that run only (e.g. what the fake driver does not do). Exit status 1 if the
first run (Berth) has a failure that no known reason explains and that the other runs do
not share.
"""

import argparse
import re
import sys

import subunit
import testtools

# Tempest reports setUpClass failures as a test named "setUpClass (tempest.api....Class)".
_CLASS_FIXTURE = re.compile(r"^(setUpClass|tearDownClass) \((.*)\)$")


def load(path):
    """{test id: (status, reason)} of one subunit v2 stream; a test's last status wins."""
    results = {}

    def on_test(test):
        status = test["status"]
        if status in ("inprogress", "exists"):
            return
        status = {"success": "pass", "xfail": "pass", "fail": "fail",
                  "uxsuccess": "fail", "skip": "skip"}.get(status, status)
        reason = ""
        for name in ("reason", "traceback"):
            detail = test["details"].get(name)
            if detail is not None:
                text = detail.as_text().strip()
                if text:
                    reason = _reason(text)
                    break
        tid = re.sub(r"\[.*\]$", "", test["id"])  # drop the [id-...,smoke] attributes
        results[tid] = (status, reason)

    with open(path, "rb") as f:
        stream = subunit.ByteStreamToStreamResult(f, non_subunit_name="stdout")
        result = testtools.StreamToDict(on_test)
        result.startTestRun()
        try:
            stream.run(result)
        finally:
            result.stopTestRun()
    return results


def _reason(text):
    """The line of a traceback that says what went wrong (its last non-blank line)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Failure|Timeout|Conflict|NotFound|Fault)"
                    r"\b|^[\w.]+: ", ln):
            return ln[:200]
    return lines[-1][:200] if lines else ""


def known_reasons(path):
    out = []
    if not path:
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            regex, _, reason = line.partition("  ")
            label = None
            if re.match(r"^[a-z]+:", regex):  # "fake:regex": for that run only
                label, _, regex = regex.partition(":")
            out.append((label, re.compile(regex.strip()), reason.strip()))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+", help="label=path.subunit")
    p.add_argument("--known", help="file of `regex  reason` lines")
    args = p.parse_args()
    runs = []
    for spec in args.runs:
        label, _, path = spec.partition("=")
        runs.append((label, load(path)))
    known = known_reasons(args.known)

    def counts(res):
        c = {"pass": 0, "fail": 0, "skip": 0}
        for status, _ in res.values():
            c[status] = c.get(status, 0) + 1
        return c

    labels = [label for label, _ in runs]
    print("%-10s" % "" + "".join("%10s" % label for label in labels))
    all_counts = [counts(res) for _, res in runs]
    for key, name in (("pass", "passed"), ("fail", "failed"), ("skip", "skipped")):
        print("%-10s" % name + "".join("%10d" % c[key] for c in all_counts))
    print("%-10s" % "total" + "".join("%10d" % len(res) for _, res in runs))

    ids = sorted(set().union(*(res.keys() for _, res in runs)))
    differ = [t for t in ids
              if len({res.get(t, ("-", ""))[0] for _, res in runs}) > 1]
    print("\nTests whose outcome differs between the runs (%d):" % len(differ))
    for t in differ:
        print("  " + " ".join("%s=%s" % (label, res.get(t, ("-", ""))[0])
                              for label, res in runs) + "  " + t)

    for label, res in runs:
        reasons = {}
        for status, reason in res.values():
            if status == "skip":
                reasons[reason] = reasons.get(reason, 0) + 1
        print("\nSkipped with %s, by reason:" % label)
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            print("  %3d  %s" % (n, reason))

    unexplained = []
    for idx, (label, res) in enumerate(runs):
        fails = [t for t in ids if res.get(t, ("", ""))[0] == "fail"]
        print("\nFailures with %s (%d):" % (label, len(fails)))
        for t in fails:
            why = next((r for lb, rx, r in known
                        if rx.search(t) and lb in (None, label)), None)
            shared = [lb for lb, other in runs
                      if lb != label and other.get(t, ("", ""))[0] == "fail"]
            note = ("known: " + why if why else
                    "also fails with " + ",".join(shared) if shared else "NOT EXPLAINED")
            if idx == 0 and not why and not shared:
                unexplained.append(t)
            print("  %s\n      [%s] %s" % (t, note, res[t][1]))
    if unexplained:
        print("\n%d failure(s) of %s that neither a known reason nor the other run explain"
              % (len(unexplained), labels[0]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
