// Kept for includes written before session.hpp; the SQL session lives there.
#pragma once

#include "engine/session.hpp"
