// A fast reader for the plain block YAML that policies are written in (and that generators
// of large policies emit): yaml-cpp's scanner reads ~5 MB/s, so a policy of 100,000 rules
// took a second to scan, twice per `corral apply` (the CLI validates, the agent parses).
//
// It accepts only what it reads exactly as yaml-cpp does — block mappings and sequences
// by indentation (spaces), `key: value` with plain keys, one-line plain, single- and
// double-quoted scalars (no escapes), one-line flow sequences of scalars, comments, `---`
// between documents — and builds the same tree with the same marks. Anything else (tabs,
// CR, non-ASCII bytes, anchors, tags, block scalars, multi-line scalars, flow mappings, ...)
// makes it give up, and the caller reads the text with yaml-cpp. Internal to the parser.
#pragma once

#include <string_view>

#include "policy/yaml_tree.h"

namespace corral::policy {

// Fills `tree` (which must be empty) with the documents of `text`; false when the text is
// not in the subset, leaving `tree` in an unspecified state.
bool read_block_yaml(std::string_view text, YamlTree& tree);

} // namespace corral::policy
