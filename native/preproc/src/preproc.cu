/* The CUDA entry points: one thread per output pixel, each running the same per-pixel function as the host
 * reference (evp_math.h). Nothing here synchronises: work is queued on the caller's stream. */
#include <cuda_runtime.h>

#include "evp_config.h"
#include "evp_internal.h"

namespace {

const dim3 kBlock(16, 16);

__global__ void crop_kernel(evp::CropPlan p, uint8_t *crop) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= p.crop || y >= p.crop) return;
  uint8_t px[3];
  evp::resized_pixel(p.src, p.resize, p.left + x, p.top + y, px);
  uint8_t *o = crop + ((int64_t)y * p.crop + x) * 3;
  o[0] = px[0];
  o[1] = px[1];
  o[2] = px[2];
}

__global__ void tensor_kernel(evp::TensorPlan p, int size, int dtype, void *out, int64_t channel_stride) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= size || y >= size) return;
  uint8_t px[3];
  evp::resized_pixel(p.src, p.resize, x, y, px);
  evp::store_tensor(px, p.norm, dtype, out, (int64_t)y * size + x, channel_stride);
}

dim3 grid_for(int side) {
  const unsigned n = (unsigned)((side + 15) / 16);
  return dim3(n, n);
}

/* A CUDA error as an evp_status: the kinds a caller can act on get their own codes. */
int cuda_status(cudaError_t err, const char *what) {
  int status = EVP_ERR_CUDA;
  if (err == cudaErrorNoKernelImageForDevice || err == cudaErrorInvalidDeviceFunction)
    status = EVP_ERR_NO_KERNEL_FOR_DEVICE;
  else if (err == cudaErrorInvalidValue || err == cudaErrorInvalidResourceHandle ||
           err == cudaErrorContextIsDestroyed)
    status = EVP_ERR_CONTEXT;
  return evp::fail(status, "%s: %s (%s); this library has kernels for SM %s", what, cudaGetErrorName(err),
                   cudaGetErrorString(err), EVP_BUILT_ARCHS);
}

/* A kernel reads or writes through ptr: it has to be memory of the current device that kernels can address
 * (device, managed, or mapped pinned host memory). */
int check_pointer(const void *ptr, const char *name) {
  cudaPointerAttributes a;
  cudaError_t err = cudaPointerGetAttributes(&a, ptr);
  if (err != cudaSuccess) {
    cudaGetLastError(); /* the query's error is not sticky; do not leave it for the caller's next check */
    return cuda_status(err, name);
  }
  int device = -1;
  err = cudaGetDevice(&device);
  if (err != cudaSuccess) return cuda_status(err, "cudaGetDevice");
  const bool addressable = a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged ||
                           (a.type == cudaMemoryTypeHost && a.devicePointer == ptr);
  if (!addressable || (a.type != cudaMemoryTypeManaged && a.device != device))
    return evp::fail(EVP_ERR_CONTEXT, "%s (%p) is not device memory of the current CUDA context (device %d)", name,
                     ptr, device);
  return EVP_OK;
}

int check_launch(const char *what) {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? EVP_OK : cuda_status(err, what);
}

}  // namespace

extern "C" {

const char *evp_built_archs(void) { return EVP_BUILT_ARCHS; }

int evp_check_device(int *sm) {
  if (!sm) return evp::fail(EVP_ERR_ARGUMENT, "evp_check_device: sm is NULL");
  *sm = 0;
  int device = 0, major = 0, minor = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (err != cudaSuccess) return cuda_status(err, "reading the current device's compute capability");
  *sm = major * 10 + minor;
  cudaFuncAttributes attributes;
  err = cudaFuncGetAttributes(&attributes, crop_kernel);
  if (err == cudaErrorNoKernelImageForDevice || err == cudaErrorInvalidDeviceFunction) {
    cudaGetLastError();
    return evp::fail(EVP_ERR_NO_KERNEL_FOR_DEVICE,
                     "no kernel for SM %d in this library (built for SM %s): rebuild it with "
                     "-DCMAKE_CUDA_ARCHITECTURES=%d (cmake/README.md)",
                     *sm, EVP_BUILT_ARCHS, *sm);
  }
  return err == cudaSuccess ? EVP_OK : cuda_status(err, "cudaFuncGetAttributes");
}

int evp_crop(const evp_frame *frame, const evp_geometry *g, uint8_t *crop, void *stream) {
  int status = evp::validate_crop(frame, g, crop);
  if (status == EVP_OK) status = check_pointer(frame->data, "the frame's data");
  if (status == EVP_OK && frame->format == EVP_NV12) status = check_pointer(frame->uv, "the frame's uv plane");
  if (status == EVP_OK) status = check_pointer(crop, "the crop buffer");
  if (status != EVP_OK) return status;
  const evp::CropPlan p = evp::plan_crop(frame, g);
  crop_kernel<<<grid_for(p.crop), kBlock, 0, (cudaStream_t)stream>>>(p, crop);
  return check_launch("launching the crop kernel");
}

int evp_tensor(const uint8_t *crop, int crop_size, int size, const float mul[3], const float add[3], int dtype,
               void *out, int64_t channel_stride, void *stream) {
  int status = evp::validate_tensor(crop, crop_size, size, mul, add, dtype, out, channel_stride);
  if (status == EVP_OK) status = check_pointer(crop, "the crop");
  if (status == EVP_OK) status = check_pointer(out, "the output tensor");
  if (status != EVP_OK) return status;
  const evp::TensorPlan p = evp::plan_tensor(crop, crop_size, size, mul, add);
  tensor_kernel<<<grid_for(size), kBlock, 0, (cudaStream_t)stream>>>(p, size, dtype, out, channel_stride);
  return check_launch("launching the tensor kernel");
}

}  // extern "C"
