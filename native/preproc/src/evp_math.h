/* Per-pixel arithmetic of edgevid_preproc, shared by the CUDA kernels and the host reference so that both
 * produce the same bytes. Every rule here mirrors what cv2.resize / cv2.cvtColor do for uint8 images
 * (edgevid/preprocess.py is the CPU path the model was trained with). */
#ifndef EVP_MATH_H
#define EVP_MATH_H

#include <math.h>
#include <stdint.h>

#include "edgevid_preproc.h"

#if defined(__CUDACC__)
#define EVP_HD __host__ __device__ __forceinline__
#else
#define EVP_HD inline
#endif

namespace evp {

/* OpenCV's fixed point for bilinear uint8 weights (INTER_RESIZE_COEF_BITS). */
const int kCoefBits = 11;
const int kCoefScale = 1 << kCoefBits;

enum ResizeKind {
  RESIZE_COPY = 0,       /* same size: cv2.resize copies */
  RESIZE_AREA_FAST = 1,  /* INTER_AREA with integer factors in both axes */
  RESIZE_AREA = 2,       /* INTER_AREA, general (fractional edge weights) */
  RESIZE_LINEAR = 3,     /* INTER_LINEAR */
  RESIZE_LINEAR_AREA = 4 /* INTER_AREA asked while one axis enlarges: OpenCV's bilinear "area mode" */
};

/* A readable image: the frame, or a crop (then format BGR8 and swap 0). swap: exchange channels 0 and 2. */
struct Source {
  int format;
  int width, height;
  const uint8_t *data;
  int pitch;
  const uint8_t *uv;
  int uv_pitch;
  int swap;
};

/* How one image of sw x sh becomes dw x dh, with OpenCV's own scale factors (it divides, then inverts). */
struct Resize {
  int kind;
  int sw, sh, dw, dh;
  double scale_x, scale_y;  /* source pixels per destination pixel */
  double inv_x, inv_y;      /* destination pixels per source pixel */
  int fast_x, fast_y;       /* RESIZE_AREA_FAST: the integer factors */
};

/* out = x * mul + add per channel, as two rounded float operations (numpy's multiply then +=). */
struct Affine {
  float mul[3];
  float add[3];
};

template <typename T>
EVP_HD T min_of(T a, T b) { return a < b ? a : b; }
template <typename T>
EVP_HD T max_of(T a, T b) { return a > b ? a : b; }

EVP_HD int clamp_u8(int v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }

/* saturate_cast<uchar>(float): round half to even, then clamp */
EVP_HD uint8_t round_u8(float v) { return (uint8_t)clamp_u8((int)rintf(v)); }

/* cv2.COLOR_YUV2BGR_NV12: BT.601 limited range in 20-bit fixed point */
EVP_HD void nv12_to_bgr(int y, int u, int v, int bgr[3]) {
  const int yy = max_of(y - 16, 0) * 1220542;
  const int du = u - 128, dv = v - 128;
  const int half = 1 << 19;
  bgr[0] = clamp_u8((yy + 2116026 * du + half) >> 20);
  bgr[1] = clamp_u8((yy - 852492 * dv - 409993 * du + half) >> 20);
  bgr[2] = clamp_u8((yy + 1673527 * dv + half) >> 20);
}

/* One source pixel in output channel order; NV12 is converted here, so no converted copy of the frame is made. */
EVP_HD void load(const Source &s, int x, int y, int px[3]) {
  if (s.format == EVP_NV12) {
    const int luma = s.data[(int64_t)y * s.pitch + x];
    const uint8_t *c = s.uv + (int64_t)(y >> 1) * s.uv_pitch + (x & ~1);
    nv12_to_bgr(luma, c[0], c[1], px);
  } else {
    const uint8_t *p = s.data + (int64_t)y * s.pitch + 3 * (int64_t)x;
    px[0] = p[0];
    px[1] = p[1];
    px[2] = p[2];
  }
  if (s.swap) {
    const int t = px[0];
    px[0] = px[2];
    px[2] = t;
  }
}

EVP_HD void copy_pixel(const Source &s, int dx, int dy, uint8_t out[3]) {
  int px[3];
  load(s, dx, dy, px);
  for (int c = 0; c < 3; ++c) out[c] = (uint8_t)px[c];
}

/* Integer-factor INTER_AREA: the block mean. OpenCV's SIMD 2x2 path rounds (sum + 2) >> 2; other factors go
 * through sum * (1.f / area) with float rounding. */
EVP_HD void area_fast_pixel(const Source &s, const Resize &r, int dx, int dy, uint8_t out[3]) {
  int sum[3] = {0, 0, 0};
  for (int j = 0; j < r.fast_y; ++j) {
    for (int i = 0; i < r.fast_x; ++i) {
      int px[3];
      load(s, dx * r.fast_x + i, dy * r.fast_y + j, px);
      for (int c = 0; c < 3; ++c) sum[c] += px[c];
    }
  }
  const int area = r.fast_x * r.fast_y;
  for (int c = 0; c < 3; ++c) {
    if (area == 4)
      out[c] = (uint8_t)((sum[c] + 2) >> 2);
    else
      out[c] = round_u8((float)sum[c] * (1.f / (float)area));
  }
}

/* The source cells one destination cell covers in general INTER_AREA: [d*scale, (d+1)*scale], whole cells
 * in [first, last) at weight mid, a partial cell before (first - 1, weight lo) and one at last (weight hi). */
struct AreaSpan {
  int first, last;
  int has_lo, has_hi;
  float lo, mid, hi;
};

EVP_HD AreaSpan area_span(int d, double scale, int ssize) {
  AreaSpan a;
  const double f1 = d * scale, f2 = f1 + scale;
  const double cell = min_of(scale, ssize - f1);
  int s1 = (int)ceil(f1), s2 = (int)floor(f2);
  s2 = min_of(s2, ssize - 1);
  s1 = min_of(s1, s2);
  a.first = s1;
  a.last = s2;
  a.has_lo = s1 - f1 > 1e-3;
  a.lo = (float)((s1 - f1) / cell);
  a.mid = (float)(1.0 / cell);
  a.has_hi = f2 - s2 > 1e-3;
  a.hi = (float)(min_of(min_of(f2 - s2, 1.0), cell) / cell);
  return a;
}

EVP_HD int span_begin(const AreaSpan &a) { return a.has_lo ? a.first - 1 : a.first; }
EVP_HD int span_end(const AreaSpan &a) { return a.has_hi ? a.last + 1 : a.last; }
EVP_HD float span_weight(const AreaSpan &a, int s) {
  if (a.has_lo && s == a.first - 1) return a.lo;
  if (a.has_hi && s == a.last) return a.hi;
  return a.mid;
}

/* General INTER_AREA in OpenCV's order of float operations: each source row is summed across x first,
 * then the rows are summed with their y weights. */
EVP_HD void area_pixel(const Source &s, const Resize &r, int dx, int dy, uint8_t out[3]) {
  const AreaSpan xs = area_span(dx, r.scale_x, r.sw), ys = area_span(dy, r.scale_y, r.sh);
  float acc[3] = {0.f, 0.f, 0.f};
  for (int sy = span_begin(ys); sy < span_end(ys); ++sy) {
    float row[3] = {0.f, 0.f, 0.f};
    for (int sx = span_begin(xs); sx < span_end(xs); ++sx) {
      const float alpha = span_weight(xs, sx);
      int px[3];
      load(s, sx, sy, px);
      for (int c = 0; c < 3; ++c) row[c] = row[c] + (float)px[c] * alpha;
    }
    const float beta = span_weight(ys, sy);
    for (int c = 0; c < 3; ++c) acc[c] = acc[c] + beta * row[c];
  }
  for (int c = 0; c < 3; ++c) out[c] = round_u8(acc[c]);
}

/* Two bilinear taps along one axis: source indices s0, s1 (inside the image) and 11-bit weights. */
struct Tap {
  int s0, s1;
  int w0, w1;
};

/* OpenCV treats the axes differently at the borders: a column outside the image is moved onto the edge with
 * weight (1, 0), while a row keeps its fraction and both its taps are clipped into the image (edge_weights 0),
 * which rounds differently in the vertical blend. */
EVP_HD Tap linear_tap(int d, double scale, double inv, int ssize, int area_mode, int edge_weights) {
  float f;
  int s;
  if (!area_mode) {
    f = (float)((d + 0.5) * scale - 0.5);
    s = (int)floorf(f);
    f -= (float)s;
  } else {
    s = (int)floor(d * scale);
    f = (float)((d + 1) - (s + 1) * inv);
    f = f <= 0.f ? 0.f : f - floorf(f);
  }
  if (edge_weights && s < 0) {
    f = 0.f;
    s = 0;
  }
  if (edge_weights && s >= ssize - 1) {
    f = 0.f;
    s = ssize - 1;
  }
  Tap t;
  t.s0 = max_of(min_of(s, ssize - 1), 0);
  t.s1 = max_of(min_of(s + 1, ssize - 1), 0);
  t.w0 = (int)rintf((1.f - f) * (float)kCoefScale);
  t.w1 = (int)rintf(f * (float)kCoefScale);
  return t;
}

/* INTER_LINEAR for uint8: horizontal taps in int, then the vertical blend as OpenCV's SIMD path computes it
 * (operands pre-shifted by 4, high halves of 16-bit products, +2 >> 2), which is what most pixels get. */
EVP_HD void linear_pixel(const Source &s, const Resize &r, int dx, int dy, uint8_t out[3], int area_mode) {
  const Tap tx = linear_tap(dx, r.scale_x, r.inv_x, r.sw, area_mode, 1);
  const Tap ty = linear_tap(dy, r.scale_y, r.inv_y, r.sh, area_mode, 0);
  int a[3], b[3], c0[3], d[3];
  load(s, tx.s0, ty.s0, a);
  load(s, tx.s1, ty.s0, b);
  load(s, tx.s0, ty.s1, c0);
  load(s, tx.s1, ty.s1, d);
  for (int c = 0; c < 3; ++c) {
    const int h0 = a[c] * tx.w0 + b[c] * tx.w1;
    const int h1 = c0[c] * tx.w0 + d[c] * tx.w1;
    const int v = (((h0 >> 4) * ty.w0) >> 16) + (((h1 >> 4) * ty.w1) >> 16);
    out[c] = (uint8_t)clamp_u8((v + 2) >> 2);
  }
}

EVP_HD void resized_pixel(const Source &s, const Resize &r, int dx, int dy, uint8_t out[3]) {
  switch (r.kind) {
    case RESIZE_AREA_FAST: area_fast_pixel(s, r, dx, dy, out); break;
    case RESIZE_AREA: area_pixel(s, r, dx, dy, out); break;
    case RESIZE_LINEAR: linear_pixel(s, r, dx, dy, out, 0); break;
    case RESIZE_LINEAR_AREA: linear_pixel(s, r, dx, dy, out, 1); break;
    default: copy_pixel(s, dx, dy, out); break;
  }
}

/* float -> IEEE half bits, round to nearest even; written out so host and device agree bit for bit. */
EVP_HD uint16_t half_bits(float f) {
  union {
    float f;
    uint32_t u;
  } v;
  v.f = f;
  const uint32_t sign = (v.u >> 16) & 0x8000u;
  const uint32_t mag = v.u & 0x7fffffffu;
  if (mag >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (mag > 0x7f800000u ? 0x200u : 0u));
  if (mag >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds past 65504 */
  if (mag < 0x38800000u) {                                    /* a half subnormal or zero */
    if (mag < 0x33000000u) return (uint16_t)sign;            /* below half the smallest subnormal */
    const uint32_t mant = (mag & 0x7fffffu) | 0x800000u;
    const int shift = 126 - (int)(mag >> 23); /* to units of 2^-24, the half subnormal step */
    const uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1u), halfway = 1u << (shift - 1);
    const uint32_t r = q + ((rem > halfway || (rem == halfway && (q & 1u))) ? 1u : 0u);
    return (uint16_t)(sign | r);
  }
  const uint32_t rebased = mag - 0x38000000u; /* exponent bias 127 -> 15 */
  const uint32_t q = rebased >> 13, rem = rebased & 0x1fffu;
  const uint32_t r = q + ((rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ? 1u : 0u);
  return (uint16_t)(sign | r);
}

/* One output element of evp_tensor: numpy's two float32 roundings (x * mul, then + add), never fused. */
EVP_HD float normalize(int x, float mul, float add) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(__fmul_rn((float)x, mul), add);
#else
  const volatile float product = (float)x * mul; /* volatile: no host compiler may fuse it into an fma */
  return product + add;
#endif
}

EVP_HD void store_tensor(const uint8_t px[3], const Affine &n, int dtype, void *out, int64_t index,
                         int64_t channel_stride) {
  for (int c = 0; c < 3; ++c) {
    const float v = normalize(px[c], n.mul[c], n.add[c]);
    if (dtype == EVP_FLOAT16)
      ((uint16_t *)out)[index + c * channel_stride] = half_bits(v);
    else
      ((float *)out)[index + c * channel_stride] = v;
  }
}

}  // namespace evp

#endif
