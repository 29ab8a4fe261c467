/* SPDX-License-Identifier: MIT */
#include "../eq_shim.h"
