/* The CUDA entry points of a host-only build: they exist so that a loader binds every symbol, validate like
 * the CUDA build, and then say how to get the real ones. */
#include "evp_internal.h"

namespace {

const char kNoCuda[] = "this libedgevid_preproc was built without CUDA: rebuild it with nvcc (cmake/README.md)";

int no_cuda() { return evp::fail(EVP_ERR_CUDA, "%s", kNoCuda); }

}  // namespace

extern "C" {

const char *evp_built_archs(void) { return "host"; }

int evp_check_device(int *sm) {
  if (!sm) return evp::fail(EVP_ERR_ARGUMENT, "evp_check_device: sm is NULL");
  *sm = 0;
  return no_cuda();
}

int evp_crop(const evp_frame *frame, const evp_geometry *g, uint8_t *crop, void *stream) {
  (void)stream;
  const int status = evp::validate_crop(frame, g, crop);
  return status != EVP_OK ? status : no_cuda();
}

int evp_tensor(const uint8_t *crop, int crop_size, int size, const float mul[3], const float add[3], int dtype,
               void *out, int64_t channel_stride, void *stream) {
  (void)stream;
  const int status = evp::validate_tensor(crop, crop_size, size, mul, add, dtype, out, channel_stride);
  return status != EVP_OK ? status : no_cuda();
}

}  // extern "C"
