#include "agent/ownership.hpp"

#include <algorithm>

namespace dbops::agent {

std::uint64_t rendezvous_weight(std::string_view member, std::string_view target) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto feed = [&](std::string_view s) {
    for (const unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
  };
  feed(member);
  feed(std::string_view("\0", 1));
  feed(target);
  // splitmix64's finalizer: FNV-1a alone clusters on similar names.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

std::string owner_of(std::string_view target, const std::vector<std::string>& members) {
  std::string best;
  std::uint64_t best_weight = 0;
  for (const auto& m : members) {
    const std::uint64_t w = rendezvous_weight(m, target);
    if (best.empty() || w > best_weight || (w == best_weight && m < best)) {
      best = m;
      best_weight = w;
    }
  }
  return best;
}

std::vector<std::string> owned_targets(const std::vector<std::string>& targets,
                                       std::vector<std::string> members, const std::string& self) {
  if (std::find(members.begin(), members.end(), self) == members.end()) members.push_back(self);
  std::vector<std::string> out;
  for (const auto& t : targets) {
    if (owner_of(t, members) == self) out.push_back(t);
  }
  return out;
}

}  // namespace dbops::agent
