#include "api/token_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <fstream>

namespace warden::api {

Result<std::map<std::string, std::string>> LoadTokenFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    return Status::FromErrno("cannot read token file " + path, errno);
  if ((st.st_mode & 077) != 0) {
    return Status::InvalidArgument("token file " + path +
                                   " is readable by group or others; chmod 600 it");
  }
  std::ifstream file(path);
  if (!file) return Status::IoError("cannot read token file " + path);
  std::map<std::string, std::string> tokens;
  std::string line;
  for (int number = 1; std::getline(file, line); ++number) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    size_t colon = line.find(':');
    std::string where = path + ":" + std::to_string(number);
    if (colon == std::string::npos || colon == 0 || colon + 1 == line.size()) {
      return Status::InvalidArgument(where + ": expected NAME:TOKEN");
    }
    std::string name = line.substr(0, colon);
    std::string token = line.substr(colon + 1);
    if (!tokens.emplace(token, name).second) {
      return Status::InvalidArgument(where + ": this token is already given to another name");
    }
  }
  if (tokens.empty()) return Status::InvalidArgument("token file " + path + " holds no token");
  return tokens;
}

std::string TokenName(const std::map<std::string, std::string>& tokens, std::string_view token) {
  std::string found;
  for (const auto& [candidate, name] : tokens) {
    unsigned char diff = candidate.size() == token.size() ? 0 : 1;
    for (size_t i = 0; i < candidate.size(); ++i) {
      diff |= static_cast<unsigned char>(candidate[i] ^ (i < token.size() ? token[i] : 0));
    }
    if (diff == 0) found = name;
  }
  return found;
}

}  // namespace warden::api
