// Alert <-> feeder.Alert / feeder.Log (KubeArmor's wire messages), by field name.
#pragma once

#include "events/alert.h"
#include "kubearmor.pb.h"

namespace corral::events {

feeder::Alert to_proto_alert(const Alert& a);
feeder::Log to_proto_log(const Alert& a);
Alert from_proto(const feeder::Alert& p);
Alert from_proto(const feeder::Log& p);

} // namespace corral::events
