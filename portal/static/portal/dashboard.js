// Draws the dashboard's funded-vs-repaid charts from the JSON the page embeds (no inline code).
(function () {
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var words = document.getElementById("chart-words").dataset;
  var locale = document.documentElement.lang || "en";
  data.forEach(function (chart) {
    var canvas = document.getElementById(chart.id);
    if (!canvas || !window.Chart) { return; }
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: chart.labels,
        datasets: [
          { label: words.funded, data: chart.funded, backgroundColor: "#2456d3" },
          { label: words.repaid, data: chart.repaid, backgroundColor: "#18a070" }
        ]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        locale: locale,
        plugins: {
          legend: { position: "bottom" },
          tooltip: { callbacks: { title: function (items) { return words.week + " " + items[0].label; } } }
        },
        scales: { y: { beginAtZero: true, ticks: { callback: function (v) {
          return new Intl.NumberFormat(locale).format(v) + " " + chart.currency; } } } }
      }
    });
  });
})();
