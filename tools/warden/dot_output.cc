#include "dot_output.h"

#include <boost/json/object.hpp>
#include <string>

namespace warden::cli {

namespace json = boost::json;

namespace {

// A DOT double-quoted string: `"` and `\` escaped, line breaks as DOT's "\n".
std::string Quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c != '\r') {
      out += c;
    }
  }
  return out + "\"";
}

std::string_view StringOr(const json::object& o, std::string_view key, std::string_view fallback) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string_view(v->get_string()) : fallback;
}

}  // namespace

NodeColours NodeColoursFor(std::string_view status) {
  // Kept equal to src/api/ui/app.css's .s-* classes.
  if (status == "running") return {"#3b82f6", "#ffffff"};
  if (status == "paused") return {"#f59e0b", "#1f2328"};
  if (status == "stopping") return {"#f97316", "#1f2328"};
  if (status == "succeeded") return {"#22c55e", "#0b2e13"};
  if (status == "failed") return {"#ef4444", "#ffffff"};
  if (status == "skipped") return {"#eceef1", "#656d76"};
  if (status == "stopped") return {"#7e22ce", "#ffffff"};
  if (status == "lost") return {"#374151", "#ffffff"};
  if (status == "unkillable") return {"#111827", "#fca5a5"};
  return {"#c9ced6", "#1f2328"};  // pending
}

void PrintDot(const json::value& execution, std::ostream& out) {
  const json::object& x = execution.as_object();
  const std::string id(StringOr(x, "executionId", ""));
  const std::string name(StringOr(x, "name", ""));
  std::string title = (name.empty() ? "execution" : name) + " " + id + " (" +
                      std::string(StringOr(x, "status", "?")) + ")";
  out << "digraph " << Quoted(id) << " {\n"
      << "  graph [rankdir=LR, labelloc=t, fontname=\"sans-serif\", label=" << Quoted(title)
      << "];\n"
      << "  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\", fontsize=10];\n"
      << "  edge [color=\"#8c959f\"];\n";
  const json::value* nodes = x.if_contains("nodes");
  if (!nodes || !nodes->is_array()) {
    out << "}\n";
    return;
  }
  for (const json::value& v : nodes->get_array()) {
    const json::object& node = v.as_object();
    const std::string_view node_id = StringOr(node, "id", "?");
    const std::string_view status = StringOr(node, "status", "pending");
    std::string label = std::string(node_id) + "\n" + std::string(status);
    if (const json::value* a = node.if_contains("attempt");
        a && a->is_int64() && a->as_int64() > 1) {
      label += " #" + std::to_string(a->as_int64());
    }
    if (const json::value* s = node.if_contains("signal"); s && s->is_string()) {
      label += " " + std::string(s->get_string());
    } else if (const json::value* e = node.if_contains("exitCode");
               e && e->is_int64() && e->as_int64() != 0) {
      label += " exit " + std::to_string(e->as_int64());
    }
    const NodeColours colours = NodeColoursFor(status);
    out << "  " << Quoted(node_id) << " [label=" << Quoted(label) << ", fillcolor=\""
        << colours.fill << "\", fontcolor=\"" << colours.text << "\""
        << (status == "skipped" ? ", style=\"rounded,filled,dashed\"" : "") << "];\n";
  }
  for (const json::value& v : nodes->get_array()) {
    const json::object& node = v.as_object();
    const json::value* needs = node.if_contains("needs");
    if (!needs || !needs->is_array()) continue;
    for (const json::value& need : needs->get_array()) {
      if (!need.is_string()) continue;
      out << "  " << Quoted(need.get_string()) << " -> " << Quoted(StringOr(node, "id", "?"))
          << ";\n";
    }
  }
  out << "}\n";
}

}  // namespace warden::cli
