// Which agent probes which target: rendezvous (highest random weight)
// hashing over the live members, so that each target is probed, and its
// series exported, by exactly one agent, and a member that comes or goes moves
// only the targets it gains or loses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dbops::agent {

// The weight of (member, target): FNV-1a over both, then a 64-bit mixer; the
// same in every process and build.
std::uint64_t rendezvous_weight(std::string_view member, std::string_view target);

// The member with the highest weight for `target` (ties: the smaller id);
// empty when there are no members.
std::string owner_of(std::string_view target, const std::vector<std::string>& members);

// The targets `self` owns among `members` (self counts as a member whether
// listed or not).
std::vector<std::string> owned_targets(const std::vector<std::string>& targets,
                                       std::vector<std::string> members, const std::string& self);

}  // namespace dbops::agent
