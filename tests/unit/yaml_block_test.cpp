// The fast block-YAML reader (policy/yaml_block.h) against yaml-cpp: whatever it accepts it
// must read into the same tree, with the same marks; what yaml-cpp refuses it must refuse.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include "policy/yaml_block.h"
#include "policy/yaml_tree.h"

namespace corral::policy {
namespace {

// yaml-cpp's tree of `text`; false when yaml-cpp refuses it.
bool reference(const std::string& text, YamlTree& tree) {
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    YamlTree::Builder builder(tree);
    for (int docs = 0; parser.HandleNextDocument(builder); ++docs) {
      if (docs > 100) return false; // yaml-cpp#1040: an endless stream of empty documents
    }
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}

std::string describe(const YamlNode& n) {
  const auto m = n.mark();
  return std::to_string(static_cast<int>(n.type())) + " '" + std::string(n.scalar()) + "' at " +
         std::to_string(m.pos) + " " + std::to_string(m.line) + ":" + std::to_string(m.column);
}

void expect_same(const YamlNode& a, const YamlNode& b, const std::string& where) {
  ASSERT_EQ(a.type(), b.type()) << where << ": " << describe(a) << " vs " << describe(b);
  EXPECT_EQ(a.scalar(), b.scalar()) << where;
  if (!a.is_null()) {
    EXPECT_EQ(a.mark().pos, b.mark().pos) << where << ": " << describe(a);
    EXPECT_EQ(a.mark().line, b.mark().line) << where << ": " << describe(a);
    EXPECT_EQ(a.mark().column, b.mark().column) << where << ": " << describe(a);
  }
  ASSERT_EQ(a.size(), b.size()) << where;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a.is_map()) {
      expect_same(a.key(i), b.key(i), where + ".key" + std::to_string(i));
      expect_same(a.value(i), b.value(i), where + "." + std::string(a.key(i).scalar()));
    } else {
      expect_same(a[i], b[i], where + "[" + std::to_string(i) + "]");
    }
  }
}

std::vector<YamlNode> content(const YamlTree& t) {
  std::vector<YamlNode> out;
  for (const auto& d : t.documents()) {
    if (!d.is_null()) out.push_back(d); // the parser skips empty documents
  }
  return out;
}

// Returns whether the fast reader accepted the text.
bool check(const std::string& text, const std::string& name) {
  YamlTree ref;
  const bool ref_ok = reference(text, ref);
  YamlTree fast;
  const bool fast_ok = read_block_yaml(text, fast);
  if (!fast_ok) return false;
  EXPECT_TRUE(ref_ok) << name << ": accepted what yaml-cpp refuses:\n" << text;
  if (!ref_ok) return true;
  const auto a = content(fast);
  const auto b = content(ref);
  EXPECT_EQ(a.size(), b.size()) << name;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    expect_same(a[i], b[i], name + ": doc" + std::to_string(i));
  return true;
}

TEST(YamlBlock, SameTreeAsYamlCpp) {
  const char* accepted[] = {
      "a: 1\n",
      "a: 1\nb:\n  c: d\n  e: [x, 'y', \"z\"]\nf:\n- 1\n- 2\ng:\n",
      "# comment\n\napiVersion: v1   # trailing\nkind: K\n",
      "- a\n- b: c\n  d: e\n-\n  f: g\n- \n",
      "key:\n  - x\n  - y\nother: ~\nthird: null\nfourth: 'null'\n",
      "a: 'it''s'\nb: \"say #no\"\nc: x#y\nd: a  b   \ne: []\nf: [ a , b ]\n",
      "---\na: 1\n---\nb: 2\n...\n",
      "---\na: 1\n---\nb: 2\n---\n",
      "a: 1\n---\n\n# c\nb:\n  - c: 1\n    d: 2\n  - e: 3\n",
      "  a: 1\n  b: 2\n",
      "a:\n  b:\n    c:\n      d: 1\n  e: 2\nf: 3\n",
      "spec:\n  process:\n    matchPaths:\n    - path: /bin/sh\n      fromSource:\n      - path: "
      "/x\n"
      "    matchDirectories:\n    - dir: /tmp/\n      recursive: true\n  action: Block\n",
      "a: x:y\nb: http://h/p\nc: a[0]\n\"q\": 1\n",
      "a: 1\n  b: 2\n",
      "a: b: c\n",
      "a:\n- b\nc: d\n- e\n",
      "- - a\n",
      "a: 'unclosed\n",
      "a: [b, c\n",
      "a: [b,]\n",
      "a: &x 1\nb: *x\n",
      "a: !!str 1\n",
      "a: |\n  text\n",
      "a: multi\n  line\n",
      "a:\tb\n",
      "a: b\r\n",
      "a: \"esc\\n\"\n",
      "? a\n: b\n",
      "{a: b}\n",
      "a: {b: c}\n",
      "a: 1\na: 2\n",
      "a: [\"x\", 'y''s', z z]\n",
      "-\n",
      "a:\n",
      "",
      "---\n",
      "--- a\n",
      "- a\n,\n",
      "a: 1 # c\nb: 2#c\n",
      "a: -1\n",
      "action:\n  Allow\nb:\n  'q'\nc:\n  [x]\nd:\n- \n  e\n",
      "a:\n  b\n  c\n",
      "a:\n  b\n    c\n",
      "- a:\n   b\n",
      "a: é\n",
  };
  size_t n = 0;
  for (const char* t : accepted) n += check(t, std::string("case ") + t) ? 1 : 0;
  EXPECT_GT(n, 15u); // most of the plain ones are read by the fast reader
}

TEST(YamlBlock, SameTreeForEveryPolicyInTheRepo) {
  namespace fs = std::filesystem;
  size_t files = 0, accepted = 0;
  for (const char* dir : {"examples", "tests/fuzz/corpus", "deploy"}) {
    const fs::path root = fs::path(CORRAL_SOURCE_DIR) / dir;
    if (!fs::exists(root)) continue;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
      if (!e.is_regular_file()) continue;
      const auto ext = e.path().extension();
      if (ext != ".yaml" && ext != ".yml") continue;
      std::ifstream in(e.path());
      std::stringstream text;
      text << in.rdbuf();
      ++files;
      accepted += check(text.str(), e.path().string()) ? 1 : 0;
    }
  }
  EXPECT_GT(files, 5u);
  EXPECT_GT(accepted, 3u);
}

// A policy as generators write them (bench/bigpolicy.awk's shape), rule by rule the same.
TEST(YamlBlock, GeneratedPolicy) {
  std::string text = "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n"
                     "  name: big\nspec:\n  tags: [\"a\", \"b\"]\n  selector:\n    matchLabels:\n"
                     "      app: x\n  file:\n    matchPaths:\n";
  for (int i = 0; i < 500; ++i) {
    text += "    - path: /etc/app" + std::to_string(i) + "/f.yaml\n";
    if (i % 3 == 0) text += "      readOnly: true\n";
    if (i % 7 == 0) text += "      fromSource:\n      - path: /bin/x" + std::to_string(i) + "\n";
  }
  text += "  action: Allow\n";
  EXPECT_TRUE(check(text, "generated"));
}

// Mutations of a policy (a byte replaced, inserted or removed, with YAML's significant
// characters): every text the fast reader accepts must read as yaml-cpp reads it.
TEST(YamlBlock, MutatedPoliciesReadAsYamlCppReadsThem) {
  const std::string base =
      "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n  name: m\n"
      "spec:\n  tags: [\"a\", 'b']\n  selector:\n    matchLabels:\n      app: x # c\n"
      "  process:\n    matchPaths:\n    - path: /bin/sh\n      fromSource:\n      - path: /x\n"
      "    - path: '/a b'\n  file:\n    matchDirectories:\n    - dir: /tmp/\n"
      "      recursive: true\n  action:\n    Allow\n---\nb:\n- c\n-\n  d\n";
  const std::string alphabet = " -:#'\"[],{}\n\tab/~&*!|>?.";
  uint64_t seed = 42;
  const auto next = [&seed](size_t n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>((seed >> 33) % n);
  };
  size_t accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string t = base;
    for (int k = 0, edits = 1 + static_cast<int>(next(3)); k < edits; ++k) {
      const size_t at = next(t.size());
      const char c = alphabet[next(alphabet.size())];
      switch (next(3)) {
      case 0: t[at] = c; break;
      case 1: t.insert(t.begin() + static_cast<long>(at), c); break;
      default: t.erase(at, 1); break;
      }
    }
    accepted += check(t, "mutation " + std::to_string(i)) ? 1 : 0;
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(accepted, 300u);
}

} // namespace
} // namespace corral::policy
