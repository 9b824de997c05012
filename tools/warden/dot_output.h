// `warden show ID --dot`: an execution's DAG as Graphviz DOT, for people who want a file
// (`warden show ID --dot | dot -Tsvg > run.svg`). The same graph and node colours as the
// web view: left to right, edges from each node's `needs`, filled by node state.
#pragma once

#include <boost/json/value.hpp>
#include <ostream>
#include <string_view>

namespace warden::cli {

// The fill and text colours ("#rrggbb") of a node in `status` (api.md's node statuses; an
// unknown one gets the pending colours).
struct NodeColours {
  std::string_view fill;
  std::string_view text;
};
NodeColours NodeColoursFor(std::string_view status);

// Writes `execution` (api.md's Execution object) as one DOT digraph: a node per DAG node,
// labelled with its id and status (and a later attempt's number, a non-zero exit code or a
// signal), and an edge from each needed node to the node that needs it.
void PrintDot(const boost::json::value& execution, std::ostream& out);

}  // namespace warden::cli
