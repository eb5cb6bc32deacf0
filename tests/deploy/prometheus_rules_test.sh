#!/bin/sh
# The alert rules as their users keep them: `promtool check rules` and `promtool test
# rules` pass; every alert has labels severity and team and annotations summary,
# description, dashboard and runbook; a CamelCase name with the common prefix; and a
# runbook link to an anchor that README.md's runbook section has.
#   tests/deploy/prometheus_rules_test.sh SOURCE_DIR
set -eu
src=${1:?usage: prometheus_rules_test.sh SOURCE_DIR}
rules=$src/deploy/prometheus/poolkeeper.yaml
promtool check rules "$rules"
(cd "$src/deploy/prometheus" && promtool test rules poolkeeper_test.yaml)
python3 - "$rules" "$src/README.md" <<'PY'
import re, sys, yaml
rules, readme = sys.argv[1], open(sys.argv[2]).read()
anchors = {re.sub(r'[^a-z0-9_-]', '', h.strip().lower().replace(' ', '-'))
           for h in re.findall(r'^#+ (.*)$', readme, re.M)}
bad, n = [], 0
for g in yaml.safe_load(open(rules))['groups']:
    for r in g['rules']:
        a = r.get('alert')
        if not a:
            continue
        n += 1
        if not re.fullmatch(r'Poolkeeper(?:[A-Z][a-z0-9]+)+', a):
            bad.append(f'{a}: not CamelCase with the Poolkeeper prefix')
        for k in ('severity', 'team'):
            if not r.get('labels', {}).get(k):
                bad.append(f'{a}: no label {k}')
        if r.get('labels', {}).get('severity') not in ('critical', 'warning', 'info'):
            bad.append(f'{a}: severity must be critical, warning or info')
        for k in ('summary', 'description', 'dashboard', 'runbook'):
            if not r.get('annotations', {}).get(k):
                bad.append(f'{a}: no annotation {k}')
        rb = r.get('annotations', {}).get('runbook', '')
        anchor = rb.rsplit('#', 1)[-1] if '#' in rb else ''
        if anchor != a.lower():
            bad.append(f'{a}: runbook anchor "{anchor}" is not "{a.lower()}"')
        elif anchor not in anchors:
            bad.append(f'{a}: README.md has no heading for the runbook anchor #{anchor}')
if n < 11:
    bad.append(f'only {n} alerts')
print('\n'.join(bad) if bad else f'{n} alerts: labels, annotations and runbook anchors present')
sys.exit(1 if bad else 0)
PY
