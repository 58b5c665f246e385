# Prints a KubeArmorPolicy of about `rules` rules (default 100,000), shaped like a large
# generated allow-list: exact programs and files of many applications, their directories,
# log and plugin patterns, a share of fromSource, readOnly, ownerOnly and per-rule Block.
# It also allows what the benchmark container runs (bash, true, sleep, every file), so
# that the container keeps working under posture block.
#
#   awk -v rules=100000 -v name=big -v label=bench -f bench/bigpolicy.awk >big.yaml
BEGIN {
  if (rules == "") rules = 100000
  if (name == "") name = "bigpolicy"
  if (label == "") label = "bench"
  n = int(rules / 100) # the unit: the shares below add up to 100
  print "apiVersion: security.kubearmor.com/v1"
  print "kind: KubeArmorPolicy"
  print "metadata:"
  print "  name: " name
  print "  namespace: corral-test"
  print "spec:"
  print "  severity: 5"
  print "  tags: [\"generated\", \"allow-list\"]"
  print "  message: generated allow-list"
  print "  selector:"
  print "    matchLabels:"
  print "      app: " label
  print "  process:"
  print "    matchPaths:"
  print "    - path: /usr/bin/bash"
  print "    - path: /usr/bin/true"
  print "    - path: /usr/bin/sleep"
  for (i = 0; i < 20 * n; i++) {
    printf "    - path: /usr/lib/app%d/bin/tool%d\n", i % 2000, i
    if (i % 20 == 0) printf "      fromSource:\n      - path: /usr/lib/app%d/bin/launcher\n", i % 2000
    if (i % 10 == 3) print "      action: Block"
  }
  print "    matchDirectories:"
  print "    - dir: /opt/cold/"
  for (i = 0; i < 10 * n; i++) {
    printf "    - dir: /opt/vendor%d/pkg%d/bin/\n", i % 500, i
    if (i % 2 == 0) print "      recursive: true"
    if (i % 25 == 1) print "      ownerOnly: true"
  }
  print "    matchPatterns:"
  for (i = 0; i < 5 * n; i++) printf "    - pattern: /srv/jobs%d/run%d/*-helper\n", i % 300, i
  print "  file:"
  print "    matchPaths:"
  for (i = 0; i < 35 * n; i++) {
    printf "    - path: /etc/app%d/conf.d/setting%d.yaml\n", i % 3000, i
    if (i % 3 == 0) print "      readOnly: true"
    if (i % 40 == 7) print "      ownerOnly: true"
    if (i % 50 == 9) printf "      fromSource:\n      - path: /usr/lib/app%d/bin/tool%d\n", i % 2000, i
  }
  print "    matchDirectories:"
  print "    - dir: /"
  print "      recursive: true"
  for (i = 0; i < 20 * n; i++) {
    printf "    - dir: /var/lib/app%d/data%d/\n", i % 3000, i
    if (i % 4 != 0) print "      recursive: true"
    if (i % 5 == 0) print "      readOnly: true"
    if (i % 10 == 3) print "      action: Block"
  }
  print "    matchPatterns:"
  for (i = 0; i < 10 * n; i++) {
    printf "    - pattern: /var/log/app%d/run%d/*.log\n", i % 3000, i
    if (i % 2 == 0) print "      readOnly: true"
  }
  print "  action: Allow"
}
