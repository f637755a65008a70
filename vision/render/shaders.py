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
# (Blinn-Phong) + a procedural environment on the reflected ray (materials.py chooses the
# inputs per part). Normals are faced toward the viewer, which makes imported meshes with
# inconsistent winding shade correctly.
#  - metal (u_metallic ~1): no diffuse; a strong, coloured (f0 = the frame colour) reflection of
#    a studio environment: bright sky with a softbox above, a dark horizon band, a warm floor,
#    so the frame shows bright and dark streaks along its curvature like polished metal.
#  - acetate (u_metallic 0): a coloured body lit with wrapped diffuse light plus a tint of
#    light scattered through the plastic at grazing angles (translucent look), a white,
#    sharp specular highlight and a faint clear-coat reflection.
#  - lens: the tint with its opacity, plus a Fresnel rim: reflection and opacity rise toward
#    grazing angles, so the lens edges brighten faintly like coated glass.
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

vec3 environment(vec3 r) {
    // A studio: floor, dark horizon band, bright sky, a softbox above and in front.
    float y = r.y;
    vec3 floor_c = vec3(0.30, 0.27, 0.24);
    vec3 horizon = vec3(0.10, 0.10, 0.11);
    vec3 sky = vec3(0.85, 0.88, 0.95);
    vec3 c = mix(floor_c, horizon, smoothstep(-0.45, -0.05, y));
    c = mix(c, sky, smoothstep(0.0, 0.35, y));
    float box = smoothstep(0.80, 0.95, dot(r, normalize(vec3(-0.2, 0.75, 0.65))));
    return c + vec3(1.6) * box;
}

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
    vec3 env = environment(r);
    vec3 base = u_color.rgb;
    float grazing = pow(1.0 - ndv, 5.0);
    if (u_is_lens > 0.5) {
        float fres = 0.04 + 0.96 * grazing;
        float a = clamp(u_color.a + 0.5 * fres, 0.0, 1.0);
        vec3 diffuse = base * (u_ambient + 0.75 * ndl);
        vec3 refl = env * fres * 0.8 + vec3(spec * ndl * 0.15);
        f_color = vec4(diffuse * u_color.a + refl, a);
        return;
    }
    if (u_metallic > 0.5) {
        vec3 f0 = mix(vec3(0.04), base, u_metallic);
        vec3 fres = f0 + (1.0 - f0) * grazing * (1.0 - u_roughness);
        vec3 refl = fres * env * 1.1;
        vec3 highlight = f0 * spec * ndl * 0.6;
        vec3 diffuse = base * (1.0 - u_metallic) * (u_ambient + 0.75 * ndl);
        f_color = vec4(diffuse + refl + highlight, 1.0);
        return;
    }
    // Acetate: wrapped diffuse, light scattered through the rim of the plastic, clear coat.
    float wrap = max((dot(n, l) + 0.35) / 1.35, 0.0);
    vec3 diffuse = base * (u_ambient + 0.7 * wrap);
    vec3 scatter = base * sqrt(max(base, vec3(0.0))) * 0.35 * pow(1.0 - ndv, 2.0);
    float coat = 0.04 + 0.96 * grazing;
    vec3 specular = vec3(spec * ndl * 0.35) + coat * env * 0.25;
    f_color = vec4(diffuse + scatter + specular, 1.0);
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
