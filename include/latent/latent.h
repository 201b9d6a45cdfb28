// The umbrella header: everything a user of latent needs.
#pragma once

#include "latent/attention.h"
#include "latent/autograd.h"
#include "latent/data.h"
#include "latent/dtype.h"
#include "latent/error.h"
#include "latent/fsq.h"
#include "latent/io.h"
#include "latent/models.h"
#include "latent/nn.h"
#include "latent/ops.h"
#include "latent/optim.h"
#include "latent/random.h"
#include "latent/stream.h"
#include "latent/tensor.h"
#include "latent/vae.h"
#include "latent/vq.h"
