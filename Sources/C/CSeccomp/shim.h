// libseccomp's public API, imported into Swift as the CSeccomp module.
#pragma once
#include <seccomp.h>
