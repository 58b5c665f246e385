// Parsing of a spec's rule sections (process, file, network, capabilities) into Rules,
// with inheritance of severity/tags/message/action from section and spec. Internal.
#pragma once

#include "policy/model.h"
#include "policy/yaml_reader.h"

namespace corral::policy {

void parse_rules(YamlReader& r, const YamlNode& spec, Policy& p);

} // namespace corral::policy
