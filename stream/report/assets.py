"""The report page's inline stylesheet and its small hover script (no external files)."""

CSS = """
:root{--ink:#1f2430;--muted:#69707d;--faint:#e8eaee;--bg:#fbfbfc;--card:#fff;--accent:#4e79a7}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0;color:var(--ink);font:15px/1.55 system-ui,-apple-system,"Segoe UI",
"Noto Sans CJK SC","Noto Sans SC","PingFang SC","Hiragino Sans GB","Microsoft YaHei",
"Source Han Sans SC",sans-serif;-webkit-font-smoothing:antialiased;
font-variant-numeric:tabular-nums}
main{max-width:1080px;margin:0 auto;padding:40px 28px 64px}
header h1{font-size:28px;line-height:1.25;margin:0 0 6px;font-weight:650;letter-spacing:-.01em}
header p{margin:0;color:var(--muted)}
nav{margin:18px 0 0;display:flex;flex-wrap:wrap;gap:8px}
nav a{font-size:13px;color:var(--ink);text-decoration:none;border:1px solid var(--faint);
background:var(--card);padding:3px 12px;border-radius:999px}
nav a:hover{border-color:var(--accent)}
section{background:var(--card);border:1px solid var(--faint);border-radius:14px;
padding:26px 28px 28px;margin:28px 0 0;box-shadow:0 1px 2px rgba(20,30,50,.04)}
h2{font-size:20px;margin:0;font-weight:650}
h3{font-size:13px;margin:26px 0 10px;font-weight:600;color:var(--muted);
text-transform:uppercase;letter-spacing:.06em}
.stats{display:flex;flex-wrap:wrap;gap:10px 28px;margin:12px 0 4px;padding:0;list-style:none}
.stats li{color:var(--muted);font-size:13px}
.stats b{display:block;color:var(--ink);font-size:20px;font-weight:600}
svg{display:block;width:100%;height:auto;overflow:visible}
.sankey .link{fill-opacity:.32;transition:fill-opacity .12s}
.sankey .link:hover{fill-opacity:.72}
.sankey .nl{font-size:13px;font-weight:600;fill:var(--ink)}
.sankey .nk{font-size:11.5px;fill:var(--muted)}
.sankey .nn{fill:var(--ink);font-weight:600}
.sankey .colhead{font-size:11px;fill:var(--muted);text-transform:uppercase;letter-spacing:.08em}
.empty{color:var(--muted);margin:18px 0 0;padding:18px;border:1px dashed var(--faint);
border-radius:10px;text-align:center}
.row{display:grid;grid-template-columns:minmax(0,11fr) minmax(0,9fr);gap:32px;align-items:start}
@media (max-width:880px){.row{grid-template-columns:minmax(0,1fr)}}
.chart{position:relative}
.sizes .area{fill-opacity:.82;stroke:#fff;stroke-width:.6}
.sizes .area:hover{fill-opacity:1}
.sizes .grid{stroke:var(--faint);stroke-width:1}
.sizes .axis,.sizes .xt{stroke:#c5cad3}
.sizes .rule{stroke:var(--ink);stroke-width:1;stroke-dasharray:3 3}
.sizes .tick{font-size:11px;fill:var(--muted)}
.tip{position:absolute;top:8px;pointer-events:none;background:rgba(255,255,255,.96);
border:1px solid var(--faint);border-radius:8px;padding:8px 10px;font-size:12px;
box-shadow:0 4px 14px rgba(20,30,50,.10);min-width:150px}
.tip div{display:flex;gap:8px;align-items:center;justify-content:space-between}
.tip .tt{font-weight:600;margin-bottom:4px}
.legend{list-style:none;margin:12px 0 0;padding:0;display:grid;
grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:4px 18px;font-size:13px}
.legend li{display:flex;align-items:center;gap:6px;min-width:0}
.sw{width:10px;height:10px;border-radius:3px;flex:none;display:inline-block}
.lk{color:var(--muted);font-size:11.5px}
.lv{margin-left:auto;font-weight:600}
table{width:100%;border-collapse:collapse;font-size:13px}
th{font-weight:600;color:var(--muted);text-align:left;font-size:11.5px;
text-transform:uppercase;letter-spacing:.05em;padding:0 6px 6px;
border-bottom:1px solid var(--faint)}
td{padding:6px;border-bottom:1px solid var(--faint);vertical-align:middle}
td .lab,td .k{white-space:nowrap}
td.n,th.n{text-align:right;white-space:nowrap}
td .k{color:var(--muted);font-size:11.5px;margin-left:4px}
footer{color:var(--muted);font-size:12px;margin:28px 0 0;text-align:center}
"""

JS = """
(function(){
  document.querySelectorAll(".chart").forEach(function(box){
    var svg=box.querySelector("svg"),tip=box.querySelector(".tip"),rule=svg.querySelector(".rule");
    var d=JSON.parse(box.querySelector("script[type='application/json']").textContent);
    var vb=svg.viewBox.baseVal;
    function hide(){tip.hidden=true;rule.setAttribute("visibility","hidden");}
    svg.addEventListener("mouseleave",hide);
    svg.addEventListener("mousemove",function(ev){
      var r=svg.getBoundingClientRect(),f=((ev.clientX-r.left)/r.width-d.l)/d.w;
      if(f<-0.02||f>1.02){hide();return;}
      var i=0;for(var j=1;j<d.x.length;j++){if(Math.abs(d.x[j]-f)<Math.abs(d.x[i]-f))i=j;}
      var x=(d.l+d.x[i]*d.w)*vb.width;
      rule.setAttribute("x1",x);rule.setAttribute("x2",x);rule.setAttribute("visibility","visible");
      tip.textContent="";
      var h=document.createElement("div");h.className="tt";h.textContent=d.t[i]+" UTC";
      tip.appendChild(h);
      d.s.forEach(function(s){
        var row=document.createElement("div"),a=document.createElement("span"),
            b=document.createElement("b"),sw=document.createElement("span");
        sw.className="sw";sw.style.background=s.color;a.appendChild(sw);
        a.appendChild(document.createTextNode(" "+s.label));
        b.textContent=s.v[i].toLocaleString("en-US");
        row.appendChild(a);row.appendChild(b);tip.appendChild(row);
      });
      tip.hidden=false;
      var px=(x/vb.width)*r.width,w=tip.offsetWidth;
      tip.style.left=(px+12+w>r.width?px-12-w:px+12)+"px";
    });
  });
})();
"""
