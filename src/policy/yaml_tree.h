// The parsed YAML documents of one input, as the parser reads them: every node in one
// array and every scalar in one string, built from yaml-cpp's parser events. yaml-cpp's own
// tree (YAML::Load) allocates a shared_ptr-linked object of several hundred bytes per node
// and keeps a set of them: for a policy of 100,000 rules that was ~150 MB and most of the
// time to apply it. Same content as YAML::LoadAll's: an alias is the anchored node itself
// (so a tree may be cyclic), a map keeps duplicate keys in order. Internal to the parser.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/mark.h>

namespace corral::policy {

enum class YamlType : uint8_t { Undefined, Null, Scalar, Sequence, Map };

class YamlTree;

// A handle to one node of a YamlTree (valid while the tree lives), or to no node
// ("undefined": a missing map key, an index past the end).
class YamlNode {
public:
  YamlNode() = default;

  [[nodiscard]] YamlType type() const;
  [[nodiscard]] bool defined() const { return type() != YamlType::Undefined; }
  [[nodiscard]] bool is_null() const { return type() == YamlType::Null; }
  [[nodiscard]] bool is_scalar() const { return type() == YamlType::Scalar; }
  [[nodiscard]] bool is_sequence() const { return type() == YamlType::Sequence; }
  [[nodiscard]] bool is_map() const { return type() == YamlType::Map; }
  // The text of a scalar; "" for any other node.
  [[nodiscard]] std::string_view scalar() const;
  // Where the node starts (its first property, if it has one); a null mark when undefined.
  [[nodiscard]] YAML::Mark mark() const;
  // Entries of a sequence, pairs of a map; 0 otherwise.
  [[nodiscard]] size_t size() const;
  // Entry i of a sequence; undefined for other nodes or past the end.
  [[nodiscard]] YamlNode operator[](size_t i) const;
  [[nodiscard]] YamlNode operator[](int i) const { // a literal 0 is also a const char*
    return i < 0 ? YamlNode() : (*this)[static_cast<size_t>(i)];
  }
  // The value of the first pair of a map whose key is the scalar `key`; undefined if none.
  [[nodiscard]] YamlNode operator[](std::string_view key) const;
  [[nodiscard]] YamlNode operator[](const char* key) const {
    return (*this)[std::string_view(key)];
  }
  [[nodiscard]] YamlNode operator[](const std::string& key) const {
    return (*this)[std::string_view(key)];
  }
  // Pair i of a map.
  [[nodiscard]] YamlNode key(size_t i) const;
  [[nodiscard]] YamlNode value(size_t i) const;
  // The same node (an alias is its anchored node).
  [[nodiscard]] bool is(const YamlNode& other) const {
    return tree_ == other.tree_ && index_ == other.index_ && defined();
  }

private:
  friend class YamlTree;
  static constexpr uint32_t kNone = UINT32_MAX;
  YamlNode(const YamlTree* tree, uint32_t index) : tree_(tree), index_(index) {}
  [[nodiscard]] YamlNode child(size_t i) const;

  const YamlTree* tree_ = nullptr;
  uint32_t index_ = kNone;
};

// Offsets are 32-bit: inputs are at most kMaxPolicyBytes (16 MiB).
class YamlTree {
public:
  YamlTree() = default;
  YamlTree(const YamlTree&) = delete; // nodes point to their tree
  YamlTree& operator=(const YamlTree&) = delete;

  [[nodiscard]] const std::vector<YamlNode>& documents() const { return documents_; }

  // Receives yaml-cpp's events for the documents of one input, in order. After an
  // exception from the parser the tree holds the documents completed before it.
  class Builder final : public YAML::EventHandler {
  public:
    explicit Builder(YamlTree& tree) : tree_(tree) {}
    void OnDocumentStart(const YAML::Mark& mark) override;
    void OnDocumentEnd() override;
    void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override;
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override;
    void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  const std::string& value) override;
    void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value style) override;
    void OnSequenceEnd() override;
    void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value style) override;
    void OnMapEnd() override;

  private:
    uint32_t add(YamlType type, const YAML::Mark& mark, YAML::anchor_t anchor, uint32_t first,
                 uint32_t count);
    void attach(uint32_t index);
    void close();

    struct Open {
      uint32_t index;
      size_t first_child; // in pending_
    };
    YamlTree& tree_;
    std::vector<Open> open_;
    std::vector<uint32_t> pending_;   // children of the open containers, innermost last
    std::vector<uint32_t> anchors_;   // by anchor id (per document; 0 is none)
    uint32_t root_ = YamlNode::kNone; // of the document being read
  };

private:
  friend class YamlNode;
  struct Rec {
    YAML::Mark mark;
    uint32_t first = 0; // scalar: offset in strings_; container: index in children_
    uint32_t count = 0; // scalar: length; sequence: entries; map: 2 x pairs (key, value)
    YamlType type = YamlType::Undefined;
  };
  std::vector<Rec> nodes_;
  std::vector<uint32_t> children_;
  std::string strings_;
  std::vector<YamlNode> documents_;
};

} // namespace corral::policy
