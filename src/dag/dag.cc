#include "dag/dag.h"

#include <utility>

namespace warden::dag {
namespace {

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Longer cycles keep their first and last kCycleEnds nodes, so a message stays readable.
constexpr size_t kCycleEnds = 8;

}  // namespace

Result<Dag> Dag::Build(ExecutionSpec spec, const SpecLimits& limits) {
  WARDEN_RETURN_IF_ERROR(ValidateSpecValues(spec, limits));
  Dag dag;
  dag.spec_ = std::move(spec);
  WARDEN_RETURN_IF_ERROR(dag.IndexNodes());
  WARDEN_RETURN_IF_ERROR(dag.ResolveNeeds());
  WARDEN_RETURN_IF_ERROR(dag.CheckAcyclic());
  return dag;
}

ExecutionSpec Dag::ReleaseSpec() && {
  index_by_id_.clear();
  needs_offsets_.assign(1, 0);
  needs_.clear();
  dependents_offsets_.assign(1, 0);
  dependents_.clear();
  return std::move(spec_);
}

std::optional<NodeIndex> Dag::Find(std::string_view id) const {
  auto it = index_by_id_.find(std::string(id));
  if (it == index_by_id_.end()) return std::nullopt;
  return it->second;
}

Status Dag::IndexNodes() {
  index_by_id_.reserve(spec_.nodes.size());
  for (NodeIndex i = 0; i < spec_.nodes.size(); ++i) {
    auto [it, inserted] = index_by_id_.emplace(spec_.nodes[i].id, i);
    if (!inserted) {
      return Status::InvalidArgument("node " + Quoted(spec_.nodes[i].id) +
                                     ": duplicate id (nodes[" + std::to_string(it->second) +
                                     "] and nodes[" + std::to_string(i) + "])");
    }
  }
  return Status::Ok();
}

Status Dag::ResolveNeeds() {
  const size_t n = spec_.nodes.size();
  needs_offsets_.assign(n + 1, 0);
  std::vector<uint32_t> dependent_count(n, 0);
  // Marks which needs of the current node were already seen: last_seen[j] == i + 1.
  std::vector<uint32_t> last_seen(n, 0);
  for (NodeIndex i = 0; i < n; ++i) {
    const NodeSpec& node = spec_.nodes[i];
    for (const std::string& need : node.needs) {
      auto it = index_by_id_.find(need);
      if (it == index_by_id_.end()) {
        return Status::InvalidArgument("node " + Quoted(node.id) + ": needs unknown node " +
                                       Quoted(need));
      }
      NodeIndex j = it->second;
      if (j == i) return Status::InvalidArgument("node " + Quoted(node.id) + ": needs itself");
      if (last_seen[j] == i + 1) {
        return Status::InvalidArgument("node " + Quoted(node.id) + ": needs " + Quoted(need) +
                                       " more than once");
      }
      last_seen[j] = i + 1;
      needs_.push_back(j);
      ++dependent_count[j];
    }
    needs_offsets_[i + 1] = static_cast<uint32_t>(needs_.size());
  }
  // Counting sort of the reversed edges: dependents come out in spec order.
  dependents_offsets_.assign(n + 1, 0);
  for (NodeIndex j = 0; j < n; ++j)
    dependents_offsets_[j + 1] = dependents_offsets_[j] + dependent_count[j];
  dependents_.resize(needs_.size());
  std::vector<uint32_t> next(dependents_offsets_.begin(), dependents_offsets_.end() - 1);
  for (NodeIndex i = 0; i < n; ++i) {
    for (NodeIndex j : needs(i)) dependents_[next[j]++] = i;
  }
  return Status::Ok();
}

// Iterative depth-first search along `needs` (recursion could overflow on a 10,000-node
// chain). Meeting a node that is still on the path closes a cycle: the path from it is the
// cycle. Visits nodes in spec order so the reported cycle is deterministic.
Status Dag::CheckAcyclic() const {
  enum : uint8_t { kUnvisited, kOnPath, kDone };
  const size_t n = spec_.nodes.size();
  std::vector<uint8_t> mark(n, kUnvisited);
  struct Frame {
    NodeIndex node;
    uint32_t next_need;  // position in needs(node) to explore next
  };
  std::vector<Frame> path;
  for (NodeIndex root = 0; root < n; ++root) {
    if (mark[root] != kUnvisited) continue;
    path.push_back({root, 0});
    mark[root] = kOnPath;
    while (!path.empty()) {
      Frame& top = path.back();
      std::span<const NodeIndex> row = needs(top.node);
      if (top.next_need == row.size()) {
        mark[top.node] = kDone;
        path.pop_back();
        continue;
      }
      NodeIndex next = row[top.next_need++];
      if (mark[next] == kUnvisited) {
        mark[next] = kOnPath;
        path.push_back({next, 0});
      } else if (mark[next] == kOnPath) {
        size_t start = 0;
        while (path[start].node != next) ++start;
        const size_t length = path.size() - start;
        std::string message = "cycle: ";
        for (size_t k = start; k < path.size(); ++k) {
          size_t position = k - start;
          if (length > 2 * kCycleEnds && position == kCycleEnds) {
            message += "... (" + std::to_string(length - 2 * kCycleEnds) + " more) -> ";
            k = path.size() - kCycleEnds - 1;
            continue;
          }
          message += spec_.nodes[path[k].node].id + " -> ";
        }
        message += spec_.nodes[next].id;
        return Status::InvalidArgument(std::move(message));
      }
    }
  }
  return Status::Ok();
}

}  // namespace warden::dag
