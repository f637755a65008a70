"""GLSL for the glasses renderer: lit frame/lens pass and the depth-only head occluder pass."""

GLASSES_VS = """
#version 330
uniform mat4 u_mvp;
uniform mat4 u_mv;
uniform mat3 u_nrm;
in vec3 in_pos;
in vec3 in_normal;
out vec3 v_pos;
out vec3 v_normal;
void main() {
    v_pos = (u_mv * vec4(in_pos, 1.0)).xyz;
    v_normal = u_nrm * in_normal;
    gl_Position = u_mvp * vec4(in_pos, 1.0);
}
"""

# Output is premultiplied alpha. Lighting is in camera space: ambient + one directional light
# (Blinn-Phong) + a sky/ground environment term on the reflected ray, so metal has something to
# reflect instead of rendering black. Normals are faced toward the viewer, which makes imported
# meshes with inconsistent winding shade correctly.
GLASSES_FS = """
#version 330
uniform vec4 u_color;
uniform float u_metallic;
uniform float u_roughness;
uniform float u_is_lens;
uniform vec3 u_light_dir;
uniform float u_ambient;
in vec3 v_pos;
in vec3 v_normal;
out vec4 f_color;
void main() {
    vec3 v = normalize(-v_pos);
    vec3 n = normalize(v_normal);
    n = faceforward(n, -v, n);
    vec3 l = normalize(u_light_dir);
    float ndl = max(dot(n, l), 0.0);
    float ndv = max(dot(n, v), 0.0);
    vec3 h = normalize(l + v);
    float shin = mix(256.0, 8.0, u_roughness);
    float spec = pow(max(dot(n, h), 0.0), shin) * (shin + 8.0) / 25.0;
    vec3 r = reflect(-v, n);
    vec3 env = mix(vec3(0.42, 0.38, 0.34), vec3(1.0, 1.0, 1.0), smoothstep(-0.5, 0.5, r.y));
    vec3 base = u_color.rgb;
    vec3 f0 = mix(vec3(0.04), base, u_metallic);
    vec3 fres = f0 + (1.0 - f0) * pow(1.0 - ndv, 5.0) * (1.0 - u_roughness);
    vec3 diffuse = base * (1.0 - u_metallic) * (u_ambient + 0.75 * ndl);
    vec3 specular = fres * env * mix(1.25, 0.45, u_roughness) + f0 * spec * ndl * 0.5;
    if (u_is_lens > 0.5) {
        float a = clamp(u_color.a + 0.35 * (fres.r - 0.04), 0.0, 1.0);
        f_color = vec4(diffuse * a + specular * 0.6, a);
    } else {
        f_color = vec4(diffuse + specular, 1.0);
    }
}
"""

OCCLUDER_VS = """
#version 330
uniform mat4 u_proj;
uniform mat4 u_mv;
uniform float u_push;
in vec3 in_pos;
void main() {
    vec3 p = (u_mv * vec4(in_pos, 1.0)).xyz;
    // Move the proxy slightly away from the camera so parts touching the skin (pads, bridge)
    // are not clipped by the approximate head surface.
    p += normalize(p) * u_push;
    gl_Position = u_proj * vec4(p, 1.0);
}
"""

OCCLUDER_FS = """
#version 330
out vec4 f_color;
void main() { f_color = vec4(0.0); }
"""

# MSAA resolve over the box-sized target only: a full-frame blit would cost more than drawing
# the glasses at 1280x720 on llvmpipe. Averaging premultiplied samples is exact.
RESOLVE_VS = """
#version 330
in vec2 in_pos;
void main() { gl_Position = vec4(in_pos, 0.0, 1.0); }
"""

RESOLVE_FS = """
#version 330
uniform sampler2DMS u_tex;
uniform int u_samples;
out vec4 f_color;
void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    vec4 c = vec4(0.0);
    for (int i = 0; i < u_samples; ++i) c += texelFetch(u_tex, p, i);
    f_color = c / float(u_samples);
}
"""
