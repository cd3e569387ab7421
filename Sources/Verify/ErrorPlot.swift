import Foundation
import Formats

/// `verify --plot`: the residual stream's relative error after every layer as bars coloured by
/// layer kind, and, for MoE models, every routed expert's own error as a heat map (a row per MoE
/// layer, a column per expert). Plain SVG 1.1 with a <title> on every bar and cell, so a browser
/// shows the exact value on hover.
public enum ErrorPlot {
    static let kindColor: [LayerKind: String] = [.mamba: "#4c78a8", .attention: "#f58518", .mlp: "#54a24b", .moe: "#b279a2"]

    public static func svg(_ r: VerifyReport, title: String) -> String {
        let width = 960.0, left = 70.0, right = 20.0, plotW = width - left - right
        let barTop = 70.0, barH = 220.0
        let moeRows = r.layers.filter { !$0.experts.isEmpty }
        let expertCols = moeRows.map(\.experts.count).max() ?? 0
        let cellH = 14.0
        let heatTop = barTop + barH + 80
        let height = moeRows.isEmpty ? barTop + barH + 60 : heatTop + Double(moeRows.count) * cellH + 45

        var s = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="\(fmt(width))" height="\(fmt(height))" \
        viewBox="0 0 \(fmt(width)) \(fmt(height))" font-family="sans-serif" font-size="11">
        <rect x="0" y="0" width="\(fmt(width))" height="\(fmt(height))" fill="#ffffff"/>
        <text x="\(fmt(left))" y="22" font-size="14" font-weight="bold">\(escape(title))</text>
        <text x="\(fmt(left))" y="40">\(escape(summary(r)))</text>

        """

        // Per-layer bars, linear scale from 0 to the largest finite error.
        let finite = r.layers.map(\.relError).filter { $0.isFinite }
        let top = niceCeiling(finite.max() ?? 0)
        s += "<text x=\"\(fmt(left))\" y=\"\(fmt(barTop - 10))\">relative error of the residual stream after each layer, ‖x_q − x_o‖ / ‖x_o‖</text>\n"
        for i in 0...4 {
            let v = top * Double(i) / 4, y = barTop + barH - barH * Double(i) / 4
            s += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(y))\" x2=\"\(fmt(left + plotW))\" y2=\"\(fmt(y))\" stroke=\"#dddddd\"/>\n"
            s += "<text x=\"\(fmt(left - 6))\" y=\"\(fmt(y + 4))\" text-anchor=\"end\">\(label(v))</text>\n"
        }
        let n = max(1, r.layers.count), slot = plotW / Double(n)
        let labelEvery = max(1, Int((28 / slot).rounded(.up)))
        for l in r.layers {
            let v = l.relError.isFinite ? l.relError : top
            let h = top > 0 ? barH * min(1, v / top) : 0
            let x = left + slot * Double(l.index) + slot * 0.1
            s += "<rect class=\"layer\" x=\"\(fmt(x))\" y=\"\(fmt(barTop + barH - h))\" width=\"\(fmt(slot * 0.8))\" height=\"\(fmt(h))\" "
            s += "fill=\"\(kindColor[l.kind]!)\"><title>layer \(l.index) (\(l.kind.name)): \(label(l.relError))</title></rect>\n"
            if l.index % labelEvery == 0 {
                s += "<text x=\"\(fmt(x + slot * 0.4))\" y=\"\(fmt(barTop + barH + 14))\" text-anchor=\"middle\">\(l.index)</text>\n"
            }
        }
        s += "<text x=\"\(fmt(left + plotW / 2))\" y=\"\(fmt(barTop + barH + 30))\" text-anchor=\"middle\">layer</text>\n"
        var lx = left
        for k in LayerKind.allCases where r.layers.contains(where: { $0.kind == k }) {
            s += "<rect x=\"\(fmt(lx))\" y=\"\(fmt(barTop + barH + 40))\" width=\"10\" height=\"10\" fill=\"\(kindColor[k]!)\"/>"
            s += "<text x=\"\(fmt(lx + 14))\" y=\"\(fmt(barTop + barH + 49))\">\(k.name)</text>\n"
            lx += 90
        }

        // Per-expert heat map from the smallest error (white) to the largest (dark red), so an
        // outlier expert stands out even when all are of one order; grey: no routed tokens.
        if !moeRows.isEmpty {
            let all = moeRows.flatMap { $0.experts.compactMap(\.relError) }.filter { $0.isFinite }
            let lo = all.min() ?? 0, hi = all.max() ?? 0
            let cellW = plotW / Double(max(1, expertCols))
            s += "<text x=\"\(fmt(left))\" y=\"\(fmt(heatTop - 10))\">each routed expert's output error on its first routed tokens "
            s += "(white \(label(lo)), darkest \(label(hi)); grey: no tokens)</text>\n"
            for (row, l) in moeRows.enumerated() {
                let y = heatTop + Double(row) * cellH
                s += "<text x=\"\(fmt(left - 6))\" y=\"\(fmt(y + cellH - 3))\" text-anchor=\"end\">layer \(l.index)</text>\n"
                for e in l.experts {
                    let x = left + cellW * Double(e.index)
                    let fill = e.relError.map { heat($0, low: lo, high: hi) } ?? "#cccccc"
                    let what = e.relError.map { "\(label($0)) on \(e.measuredTokens) of its \(e.tokens) tokens" } ?? "no tokens"
                    s += "<rect class=\"expert\" x=\"\(fmt(x))\" y=\"\(fmt(y))\" width=\"\(fmt(cellW))\" height=\"\(fmt(cellH))\" "
                    s += "fill=\"\(fill)\" stroke=\"#ffffff\" stroke-width=\"0.5\"><title>layer \(l.index) expert \(e.index): \(what)</title></rect>\n"
                }
            }
            let bottom = heatTop + Double(moeRows.count) * cellH
            let every = max(1, Int((24 / cellW).rounded(.up)))
            for e in stride(from: 0, to: expertCols, by: every) {
                s += "<text x=\"\(fmt(left + cellW * (Double(e) + 0.5)))\" y=\"\(fmt(bottom + 13))\" text-anchor=\"middle\">\(e)</text>\n"
            }
            s += "<text x=\"\(fmt(left + plotW / 2))\" y=\"\(fmt(bottom + 30))\" text-anchor=\"middle\">expert</text>\n"
        }
        s += "</svg>\n"
        return s
    }

    /// Writes the plot so that the file is either absent, the old one, or complete.
    public static func write(_ r: VerifyReport, title: String, to path: String) throws {
        try writeFileAtomically(path, contents: Array(svg(r, title: title).utf8))
    }

    static func summary(_ r: VerifyReport) -> String {
        String(format: "ppl %.4f → %.4f (ratio %.4f) · KLD mean %.3g, p99 %.3g · top-1 %.2f%% · %d tokens",
               r.original.ppl, r.quantized.ppl, r.pplRatio, r.kld.mean, r.kld.p99, r.top1Agreement * 100, r.tokensScored)
    }

    /// 1, 2 or 5 times a power of ten, at least `v`, so axis labels are round.
    static func niceCeiling(_ v: Double) -> Double {
        guard v > 0, v.isFinite else { return 1 }
        let p = pow(10, (log10(v)).rounded(.down))
        for m in [1.0, 2, 5, 10] where m * p >= v * (1 - 1e-12) { return m * p }
        return 10 * p
    }

    static func heat(_ v: Double, low: Double, high: Double) -> String {
        let t = !v.isFinite ? 1 : high > low ? min(1, max(0, (v - low) / (high - low))) : (v > 0 ? 1 : 0)
        // White → #67000d in linear RGB steps.
        let r = Int((255 - t * (255 - 103)).rounded()), g = Int((255 - t * 255).rounded()), b = Int((255 - t * (255 - 13)).rounded())
        return String(format: "#%02x%02x%02x", r, g, b)
    }

    static func label(_ v: Double) -> String {
        guard v.isFinite else { return "\(v)" }
        return v == 0 ? "0" : String(format: "%.3g", v)
    }

    static func fmt(_ v: Double) -> String { String(format: "%.2f", v) }

    static func escape(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            default: o.append(c)
            }
        }
        return o
    }
}
