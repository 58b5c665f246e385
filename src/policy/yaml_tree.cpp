#include "policy/yaml_tree.h"

namespace corral::policy {

YamlType YamlNode::type() const {
  return tree_ == nullptr || index_ == kNone ? YamlType::Undefined : tree_->nodes_[index_].type;
}

std::string_view YamlNode::scalar() const {
  if (!is_scalar()) return {};
  const auto& r = tree_->nodes_[index_];
  return std::string_view(tree_->strings_).substr(r.first, r.count);
}

YAML::Mark YamlNode::mark() const {
  return defined() ? tree_->nodes_[index_].mark : YAML::Mark::null_mark();
}

size_t YamlNode::size() const {
  const YamlType t = type();
  if (t == YamlType::Sequence) return tree_->nodes_[index_].count;
  if (t == YamlType::Map) return tree_->nodes_[index_].count / 2;
  return 0;
}

YamlNode YamlNode::child(size_t i) const {
  return {tree_, tree_->children_[tree_->nodes_[index_].first + i]};
}

YamlNode YamlNode::operator[](size_t i) const {
  return is_sequence() && i < size() ? child(i) : YamlNode();
}

YamlNode YamlNode::operator[](std::string_view key) const {
  if (!is_map()) return {};
  const size_t n = size();
  for (size_t i = 0; i < n; ++i) {
    const YamlNode k = child(2 * i);
    if (k.is_scalar() && k.scalar() == key) return child(2 * i + 1);
  }
  return {};
}

YamlNode YamlNode::key(size_t i) const {
  return is_map() && i < size() ? child(2 * i) : YamlNode();
}

YamlNode YamlNode::value(size_t i) const {
  return is_map() && i < size() ? child(2 * i + 1) : YamlNode();
}

using Builder = YamlTree::Builder;

void Builder::OnDocumentStart(const YAML::Mark& /*mark*/) {
  open_.clear();
  pending_.clear();
  anchors_.assign(1, YamlNode::kNone); // anchors do not cross documents
  root_ = YamlNode::kNone;
}

void Builder::OnDocumentEnd() {
  if (root_ != YamlNode::kNone) tree_.documents_.push_back(YamlNode(&tree_, root_));
  root_ = YamlNode::kNone;
}

uint32_t Builder::add(YamlType type, const YAML::Mark& mark, YAML::anchor_t anchor, uint32_t first,
                      uint32_t count) {
  const auto index = static_cast<uint32_t>(tree_.nodes_.size());
  tree_.nodes_.push_back(YamlTree::Rec{mark, first, count, type});
  // yaml-cpp numbers a document's anchors 1, 2, ... in the order the nodes start.
  if (anchor != 0) {
    if (anchors_.size() <= anchor) anchors_.resize(anchor + 1, YamlNode::kNone);
    anchors_[anchor] = index;
  }
  return index;
}

void Builder::attach(uint32_t index) {
  if (open_.empty()) {
    root_ = index;
  } else {
    pending_.push_back(index);
  }
}

void Builder::OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) {
  attach(add(YamlType::Null, mark, anchor, 0, 0));
}

void Builder::OnAlias(const YAML::Mark& /*mark*/, YAML::anchor_t anchor) {
  // The parser refuses an unknown anchor, so the id is always one it numbered.
  if (anchor < anchors_.size() && anchors_[anchor] != YamlNode::kNone) attach(anchors_[anchor]);
}

void Builder::OnScalar(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                       const std::string& value) {
  const auto offset = static_cast<uint32_t>(tree_.strings_.size());
  tree_.strings_ += value;
  attach(add(YamlType::Scalar, mark, anchor, offset, static_cast<uint32_t>(value.size())));
}

void Builder::OnSequenceStart(const YAML::Mark& mark, const std::string& /*tag*/,
                              YAML::anchor_t anchor, YAML::EmitterStyle::value /*style*/) {
  open_.push_back({add(YamlType::Sequence, mark, anchor, 0, 0), pending_.size()});
}

void Builder::OnMapStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value /*style*/) {
  open_.push_back({add(YamlType::Map, mark, anchor, 0, 0), pending_.size()});
}

void Builder::OnSequenceEnd() {
  close();
}

void Builder::OnMapEnd() {
  close();
}

// The container's children move from pending_ to the tree, contiguous; it then becomes a
// child of its own parent.
void Builder::close() {
  if (open_.empty()) return;
  const Open o = open_.back();
  open_.pop_back();
  // A map's children are key, value, key, value: a dangling key (not expected from the
  // parser) would shift every pair after it, so it gets a null value.
  if (tree_.nodes_[o.index].type == YamlType::Map && (pending_.size() - o.first_child) % 2 != 0)
    pending_.push_back(add(YamlType::Null, tree_.nodes_[o.index].mark, 0, 0, 0));
  auto& rec = tree_.nodes_[o.index];
  rec.first = static_cast<uint32_t>(tree_.children_.size());
  rec.count = static_cast<uint32_t>(pending_.size() - o.first_child);
  tree_.children_.insert(tree_.children_.end(),
                         pending_.begin() + static_cast<std::ptrdiff_t>(o.first_child),
                         pending_.end());
  pending_.resize(o.first_child);
  attach(o.index);
}

} // namespace corral::policy
