// The umbrella header: everything a user of latent needs.
#pragma once

#include "latent/autograd.h"
#include "latent/dtype.h"
#include "latent/error.h"
#include "latent/ops.h"
#include "latent/random.h"
#include "latent/tensor.h"
