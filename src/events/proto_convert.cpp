#include "events/proto_convert.h"

#include "events/fields.h"

namespace corral::events {
namespace {

// Copies by field name through protobuf reflection: Alert and Log share names and differ
// in numbers, and fields.h lists each name once.
void fill(const Alert& a, google::protobuf::Message& m) {
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  r->SetInt64(&m, d->FindFieldByName("Timestamp"), a.timestamp);
  for (const auto& f : string_fields()) {
    if (const auto* fd = d->FindFieldByName(f.name)) r->SetString(&m, fd, a.*f.member);
  }
  for (const auto& f : int_fields()) r->SetInt32(&m, d->FindFieldByName(f.name), a.*f.member);
  r->SetString(&m, d->FindFieldByName("TTY"), a.tty);
}

Alert read(const google::protobuf::Message& m) {
  Alert a;
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  a.timestamp = r->GetInt64(m, d->FindFieldByName("Timestamp"));
  for (const auto& f : string_fields()) {
    if (const auto* fd = d->FindFieldByName(f.name)) a.*f.member = r->GetString(m, fd);
  }
  for (const auto& f : int_fields()) a.*f.member = r->GetInt32(m, d->FindFieldByName(f.name));
  a.tty = r->GetString(m, d->FindFieldByName("TTY"));
  return a;
}

} // namespace

feeder::Alert to_proto_alert(const Alert& a) {
  feeder::Alert p;
  fill(a, p);
  for (const auto& t : a.atags) p.add_atags(t);
  return p;
}

feeder::Log to_proto_log(const Alert& a) {
  feeder::Log p;
  fill(a, p);
  return p;
}

Alert from_proto(const feeder::Alert& p) {
  Alert a = read(p);
  a.atags.assign(p.atags().begin(), p.atags().end());
  return a;
}

Alert from_proto(const feeder::Log& p) {
  return read(p);
}

} // namespace corral::events
