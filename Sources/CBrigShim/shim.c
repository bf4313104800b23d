#include "brig_shim.h"
